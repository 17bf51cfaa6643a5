"""Finds the envtest binaries installed by `make envtest`, so tests skip (or fail in CI) clearly."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

ENV_FILE_NAME = "envtest.env"
INSTALL_HINT = "run `make envtest` (tools/envtest/install.sh) to build the test control-plane tools"

# Logical tool name -> variable written by tools/envtest/install.sh.
TOOL_VARS: dict[str, str] = {
    "kube-apiserver": "PARLEY_KUBE_APISERVER",
    "etcd": "PARLEY_ETCD",
    "kubectl": "PARLEY_KUBECTL",
    "helm": "PARLEY_HELM",
    "promtool": "PARLEY_PROMTOOL",
    "prometheus": "PARLEY_PROMETHEUS",
    "kubeconform": "PARLEY_KUBECONFORM",
    "kube-score": "PARLEY_KUBE_SCORE",
}


def tools_dir() -> Path:
    """Return the tool cache directory, honouring PARLEY_TOOLS_DIR like the installer does."""
    configured = os.environ.get("PARLEY_TOOLS_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "parley" / "tools"


def read_env_file(path: Path) -> dict[str, str]:
    """Parse the installer's KEY=VALUE env file; a missing file is an empty mapping."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return values
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def in_ci() -> bool:
    """True when running under CI, where a missing tool must fail rather than skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing_tool(reason: str) -> NoReturn:
    """Skip the test locally, fail it in CI, so CI can never pass without the real tools."""
    message = f"{reason}; {INSTALL_HINT}"
    if in_ci():
        pytest.fail(f"CI=true and envtest tools are unavailable: {message}", pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class EnvtestTools:
    """Resolved paths of the envtest tools; environment variables override the env file."""

    paths: dict[str, Path]
    source: str

    @classmethod
    def discover(cls) -> EnvtestTools:
        """Read $PARLEY_TOOLS_DIR/envtest.env, then let PARLEY_* environment variables win."""
        env_file = tools_dir() / ENV_FILE_NAME
        values = read_env_file(env_file)
        paths: dict[str, Path] = {}
        for name, var in TOOL_VARS.items():
            value = os.environ.get(var) or values.get(var)
            if value:
                paths[name] = Path(value)
        return cls(paths=paths, source=str(env_file))

    def require(self, *names: str) -> dict[str, Path]:
        """Return the paths of `names`, or skip/fail the requesting test when any is unusable."""
        unset = [n for n in names if n not in self.paths]
        broken = [
            f"{self.paths[n]} is not executable"
            for n in names
            if n in self.paths and not (self.paths[n].is_file() and os.access(self.paths[n], os.X_OK))
        ]
        problems = []
        if unset:
            problems.append(
                f"{', '.join(unset)} not found (neither "
                f"{', '.join(TOOL_VARS[n] for n in unset)} nor {self.source} names them)"
            )
        problems.extend(broken)
        if problems:
            missing_tool("; ".join(problems))
        return {name: self.paths[name] for name in names}
