"""The built images (tools/images/build.sh, cached) imported into a private containerd for the session.

Without a builder (Docker, or buildah + mmdebstrap) or without containerd + runc + root the module
skips with the reason; under CI=true it fails instead, so CI cannot pass without having run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from parley_testing.envtest_tools import in_ci
from tests.support.containerd import Containerd, ContainerdUnavailableError, find_tools

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


@pytest.fixture(scope="session")
def built_images() -> dict[str, Path]:
    """Archives of the three product images and the PostgreSQL fixture, built (or found current)."""
    check_builder()
    try:
        find_tools()
    except ContainerdUnavailableError as exc:
        unavailable(str(exc))
    result = subprocess.run(
        [str(BUILD), "--with-test-fixtures"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        output = f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        pytest.fail(f"tools/images/build.sh failed ({result.returncode}):\n{output}", pytrace=False)
    archives = {name: images_dir() / f"parley-{name}.tar" for name in SERVICES}
    archives[POSTGRES] = images_dir() / "parley-test-postgres.tar"
    for archive in archives.values():
        assert archive.is_file(), f"build.sh succeeded but left no {archive}"
    return archives


@pytest.fixture(scope="session")
def containerd(built_images: dict[str, Path]) -> Iterator[Containerd]:
    """A private containerd with every built image imported; stopped (nothing left running) at the end."""
    daemon = Containerd(namespace="parley-images")
    try:
        daemon.start()
    except ContainerdUnavailableError as exc:
        unavailable(str(exc))
    try:
        for archive in built_images.values():
            daemon.import_archive(archive)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def images(containerd: Containerd) -> dict[str, str]:
    """Names of the imported images: by service (api, bot, operator), and ``postgres`` for the fixture."""
    names = {name: f"localhost/parley-{name}:{image_tag()}" for name in SERVICES}
    names[POSTGRES] = "localhost/parley-test-postgres:15"
    present = set(containerd.images())
    assert set(names.values()) <= present, f"imported {sorted(present)}, expected {sorted(names.values())}"
    return names
