"""The Dockerfile, checked without Docker: stages, what the runtime stage contains, and the uv sync it runs.

Docker cannot run here, so the file is parsed (dockerfile-parse) and the build stage's exact
`uv sync` command is replayed into a temporary virtualenv from the same lock file.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chart.support import Stage, parse_stages

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("api", "bot", "operator")
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|cc|build-essential|make|rustc|cargo|libpq-dev|python3-dev)\b")


def chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """A stage and every stage it is built FROM, nearest first."""
    result = []
    while name in stages:
        result.append(stages[name])
        name = stages[name].base
    return result


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    """The parsed Dockerfile."""
    return parse_stages()


def test_dockerfile_parses_into_build_and_runtime_stages(stages: dict[str, Stage]) -> None:
    """Multi-stage: a uv stage, a build stage per service, a shared runtime, one target per service."""
    assert {"uv", "build", "runtime", *SERVICES, *(f"build-{s}" for s in SERVICES)} <= set(stages)
    python = stages["build"].base
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", python), python
    assert stages["runtime"].base == python, "runtime and build must share the Python the venv links to"
    assert stages["uv"].base.startswith("ghcr.io/astral-sh/uv:")


@pytest.mark.parametrize("service", SERVICES)
def test_build_stage_installs_from_the_lock(stages: dict[str, Stage], service: str) -> None:
    """The build stage copies uv.lock and runs `uv sync --frozen --no-dev --package parley-<x>`."""
    build = chain(stages, f"build-{service}")
    copies = " ".join(v for stage in build for v in stage.values("COPY"))
    assert "uv.lock" in copies
    syncs = [v for v in stages[f"build-{service}"].values("RUN") if v.startswith("uv sync")]
    assert syncs, f"build-{service} runs no uv sync"
    for command in syncs:
        argv = shlex.split(command)
        assert "--frozen" in argv
        assert "--no-dev" in argv
        assert argv[argv.index("--package") + 1] == f"parley-{service}"
    assert "--no-editable" in shlex.split(syncs[-1]), "the runtime stage copies only the venv"


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_stage_is_minimal_and_unprivileged(stages: dict[str, Stage], service: str) -> None:
    """No compilers or uv in the final image; a numeric non-root USER; the venv copied from the build."""
    final = chain(stages, service)
    assert [s.name for s in final] == [service, "runtime"]
    for stage in final:
        for command in stage.values("RUN"):
            assert not COMPILERS.search(command), f"{stage.name}: {command}"
            assert "apt-get install" not in command, f"{stage.name} installs packages: {command}"
        for copy in stage.values("COPY"):
            assert "--from=uv" not in copy, f"{stage.name} copies uv into the runtime image"
    # The USER in effect: the last one of the nearest stage that sets one (the runtime base sets it).
    user = next(stage.values("USER")[-1] for stage in final if stage.values("USER"))
    uid = user.split(":")[0]
    assert uid.isdigit(), "numeric, so runAsNonRoot can verify it"
    assert int(uid) >= 1000
    copies = stages[service].values("COPY")
    assert any(f"--from=build-{service}" in c and "/app/.venv" in c for c in copies)
    env = " ".join(v for stage in final for v in stage.values("ENV"))
    assert "PATH=/app/.venv/bin" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env, "read-only root filesystem: no .pyc written at run time"


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_module_exists(stages: dict[str, Stage], service: str) -> None:
    """ENTRYPOINT runs `python -m parley_<x>`, whose __main__ exists in the package."""
    (entrypoint,) = stages[service].values("ENTRYPOINT")
    assert entrypoint == f'["python", "-m", "parley_{service}"]'
    assert (REPO / service / f"parley_{service}" / "__main__.py").is_file()


def test_migrations_ship_in_the_runtime(stages: dict[str, Stage]) -> None:
    """The Alembic scripts and alembic.ini are in /app and PARLEY_MIGRATIONS_DIR points at them."""
    runtime = stages["runtime"]
    copies = runtime.values("COPY")
    assert any(c.endswith("migrations/ /app/migrations/") for c in copies)
    assert any(c.endswith("alembic.ini /app/alembic.ini") for c in copies)
    assert "PARLEY_MIGRATIONS_DIR=/app/migrations" in " ".join(runtime.values("ENV"))
    # alembic -c /app/alembic.ini finds the scripts next to it.
    assert "script_location = %(here)s/migrations" in (REPO / "alembic.ini").read_text()


def test_dockerignore_keeps_what_the_build_copies() -> None:
    """Every COPY source survives .dockerignore; .env and tests do not reach the context."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                keep = negate
        return keep

    for path in ("uv.lock", "pyproject.toml", "alembic.ini", "migrations/env.py", "core/pyproject.toml"):
        assert included(path), path
    for service in SERVICES:
        assert included(f"{service}/pyproject.toml")
        assert included(f"{service}/parley_{service}/__main__.py")
    for path in (".env", "tests/conftest.py", ".venv/bin/python", "charts/parley/values.yaml", ".git/HEAD"):
        assert not included(path), path


@pytest.mark.parametrize("service", SERVICES)
def test_locked_install_of_each_image_works(service: str, tmp_path: Path) -> None:
    """Replay the build stage's `uv sync` into a fresh venv: it installs from uv.lock alone, no dev tools."""
    venv = tmp_path / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "copy",
    }
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv not found (neither $UV nor on PATH)")
    command = [uv, "sync", "--frozen", "--no-dev", "--no-editable", "--package", f"parley-{service}"]
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    python = venv / "bin" / "python"
    probe = (
        "import importlib.util as u, sys; "
        f"assert u.find_spec('parley_{service}.__main__'), 'entrypoint'; "
        "assert u.find_spec('pytest') is None, 'dev dependency installed'; "
        "others = [p for p in ('parley_api', 'parley_bot', 'parley_operator') "
        f"if p != 'parley_{service}' and u.find_spec(p)]; "
        "assert not others, others"
    )
    check = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=False, env={}
    )
    assert check.returncode == 0, check.stderr
    assert (venv / "bin" / "alembic").exists(), "the migration Job runs alembic from the venv"
