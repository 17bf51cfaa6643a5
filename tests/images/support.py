"""Building the images (tools/images/build.sh) and where the archives land; skipping without a builder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from parley_testing.envtest_tools import in_ci

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "tools" / "images" / "build.sh"
BUILD_TIMEOUT = 3600  # a cold build downloads Debian and every locked package
SERVICES = ("api", "bot", "operator")
POSTGRES = "postgres"


def unavailable(reason: str) -> NoReturn:
    """Skip locally, fail under CI, where a skip would hide that the images were never tested."""
    if in_ci():
        pytest.fail(f"CI=true and the images cannot be built or run: {reason}", pytrace=False)
    pytest.skip(reason)


def images_dir() -> Path:
    """Where build.sh leaves its archives (the same default as the script)."""
    configured = os.environ.get("PARLEY_IMAGES_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "parley" / "images"


def image_tag() -> str:
    """The tag build.sh gives the product images."""
    return os.environ.get("IMAGE_TAG", "dev")


def docker_works() -> bool:
    """Whether build.sh would use Docker (buildx and a daemon that answers)."""
    if shutil.which("docker") is None:
        return False
    checks = (["docker", "buildx", "version"], ["docker", "info"])
    return all(
        subprocess.run(c, capture_output=True, timeout=30, check=False).returncode == 0 for c in checks
    )


def check_builder() -> None:
    """Docker, or the buildah route's tools; skip (fail under CI) naming what is missing."""
    if docker_works():
        return
    missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        unavailable(
            f"no working Docker and not on PATH: {', '.join(missing)} "
            "(Debian: apt-get install buildah mmdebstrap) — needed to build the images"
        )
