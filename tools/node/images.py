"""Images the node runs: a pause image made here, and the archives of `make images`, imported into
containerd (the node pulls nothing: every pod uses an image that is already there)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tarfile
from pathlib import Path

from tools.node.layout import CONTAINERD_NAMESPACE, PAUSE_IMAGE, NodeLayout
from tools.node.network import run


def images_dir() -> Path:
    """Where `make images` leaves its archives."""
    configured = os.environ.get("PARLEY_IMAGES_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "parley" / "images"


def write_pause_archive(pause_binary: Path, archive: Path) -> Path:
    """A docker-archive of one layer holding /pause, run as nobody (what the kubelet expects of a
    sandbox image)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tar.gettarinfo(str(pause_binary), arcname="pause")
        info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime = 0o755, 0, 0, "", "", 0
        with pause_binary.open("rb") as binary:
            tar.addfile(info, binary)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                platform.machine(), platform.machine()
            ),
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [PAUSE_IMAGE], "Layers": ["layer.tar"]}]
    ).encode()
    content = io.BytesIO()
    with tarfile.open(fileobj=content, mode="w") as tar:
        for name, data in (("layer.tar", layer_bytes), (config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    # Rewritten only when the binary changed, so the import stamp stays valid.
    if not archive.exists() or archive.read_bytes() != content.getvalue():
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(content.getvalue())
    return archive


def import_images(layout: NodeLayout, ctr: Path, archives: list[Path]) -> list[str]:
    """Import each archive that changed since its last import; return the names imported."""
    imported = []
    stamps = layout.containerd_root.parent / "imported"  # lives as long as the image store
    stamps.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        stat = archive.stat()
        stamp = stamps / (archive.name + ".stamp")
        fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}"
        if stamp.exists() and stamp.read_text(encoding="utf-8") == fingerprint:
            continue
        run(
            str(ctr),
            f"--address={layout.containerd_socket}",
            f"--namespace={CONTAINERD_NAMESPACE}",
            "images",
            "import",
            str(archive),
        )
        stamp.write_text(fingerprint, encoding="utf-8")
        imported.append(archive.name)
    return imported
