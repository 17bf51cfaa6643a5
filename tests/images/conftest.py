"""The built images (tools/images/build.sh, cached) imported into a private containerd for the session.

Without a builder (Docker, or buildah + mmdebstrap) or without containerd + runc + root the module
skips with the reason; under CI=true it fails instead, so CI cannot pass without having run it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images.support import (
    BUILD,
    BUILD_TIMEOUT,
    POSTGRES,
    SERVICES,
    check_builder,
    image_tag,
    images_dir,
    unavailable,
)
from tests.support.containerd import Containerd, ContainerdUnavailableError, find_tools


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
