"""Static files under content-hashed names (``app.3f9c0e1a2b4d.js``), built once in memory.

ES modules import each other by relative name (``import … from "./chart.js"``); those names are
rewritten to the hashed ones before a module's own hash is taken, so a change anywhere changes the
URL of everything that depends on it and browsers may cache every file forever.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"
HASH_LENGTH = 12

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_MODULE_IMPORT = re.compile(r"""(?P<quote>["'])\./(?P<name>[\w.-]+\.js)(?P=quote)""")
_ASSET_REFERENCE = re.compile(r"\{\{\s*asset:(?P<name>[\w.-]+)\s*\}\}")


class AssetError(Exception):
    """The static files are inconsistent: a missing import or an import cycle."""


@dataclass(frozen=True)
class Asset:
    """One static file as served."""

    hashed_name: str
    body: bytes
    media_type: str

    @property
    def etag(self) -> str:
        """A strong ETag: the name already carries the content hash."""
        return f'"{self.hashed_name}"'


@dataclass(frozen=True)
class AssetManifest:
    """Logical name → hashed name, and hashed name → file."""

    hashed_names: dict[str, str]
    files: dict[str, Asset]

    def url(self, name: str, prefix: str = "static/") -> str:
        """The (relative) URL of the logical file ``name``; KeyError for an unknown file."""
        return prefix + self.hashed_names[name]


def _hashed(name: str, body: bytes) -> str:
    stem, dot, suffix = name.rpartition(".")
    digest = hashlib.sha256(body).hexdigest()[:HASH_LENGTH]
    return f"{stem}.{digest}{dot}{suffix}" if dot else f"{name}.{digest}"


def build_manifest(directory: Path) -> AssetManifest:
    """Hash every file of ``directory``, rewriting relative module imports to hashed names."""
    sources = {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}
    hashed_names: dict[str, str] = {}
    files: dict[str, Asset] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> str:
        if name in hashed_names:
            return hashed_names[name]
        if name in chain:
            raise AssetError(f"import cycle: {' -> '.join((*chain, name))}")
        if name not in sources:
            raise AssetError(f"{chain[-1] if chain else '?'} imports ./{name}, which does not exist")
        body = sources[name]
        if name.endswith(".js"):
            text = _MODULE_IMPORT.sub(
                lambda m: f"{m['quote']}./{resolve(m['name'], (*chain, name))}{m['quote']}",
                body.decode("utf-8"),
            )
            body = text.encode("utf-8")
        hashed = _hashed(name, body)
        suffix = Path(name).suffix
        hashed_names[name] = hashed
        files[hashed] = Asset(hashed, body, MEDIA_TYPES.get(suffix, "application/octet-stream"))
        return hashed

    for name in sources:
        resolve(name, ())
    return AssetManifest(hashed_names=hashed_names, files=files)


def render_template(template: str, manifest: AssetManifest) -> str:
    """Replace every ``{{ asset:name }}`` with the hashed URL; an unknown name is an AssetError."""

    def url(match: re.Match[str]) -> str:
        try:
            return manifest.url(match["name"])
        except KeyError:
            raise AssetError(f"the page refers to {match['name']}, which is not a static file") from None

    return _ASSET_REFERENCE.sub(url, template)


@dataclass(frozen=True)
class DashboardFiles:
    """The page and its static files, ready to serve."""

    page: bytes
    manifest: AssetManifest


@functools.cache
def dashboard_files() -> DashboardFiles:
    """The packaged page and static files, built on first use and kept for the process' life."""
    manifest = build_manifest(STATIC_DIR)
    page = render_template((TEMPLATES_DIR / "index.html").read_text("utf-8"), manifest)
    return DashboardFiles(page=page.encode("utf-8"), manifest=manifest)
