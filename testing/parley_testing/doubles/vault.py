"""A local HTTP double of Vault's KV v2 and Kubernetes-auth endpoints, strict where clients slip.

It answers like Vault 1.x: every request but a login needs a valid X-Vault-Token (else 403
"permission denied"), tokens only read paths their role's policy allows, a missing secret is a
404 with empty errors, a deleted version is a 404 that still carries metadata with deletion_time,
and failures (503, 412, 500) can be scripted to test retries. Only for tests; never a default.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class _Version:
    data: dict[str, Any]
    created_time: str
    deletion_time: str = ""


@dataclass
class _Role:
    jwts: set[str]
    policies: list[str]  # path prefixes (mount/path) the role's tokens may read


@dataclass
class VaultDouble:
    """State of the fake Vault: secrets with versions, roles, tokens, scripted failures."""

    root_token: str = field(default_factory=lambda: "hvs." + secrets.token_urlsafe(24))
    kv_mount: str = "secret"
    k8s_mount: str = "kubernetes"
    secrets_: dict[str, list[_Version]] = field(default_factory=dict)
    roles: dict[str, _Role] = field(default_factory=dict)
    tokens: dict[str, list[str]] = field(default_factory=dict)  # token -> allowed prefixes
    failures: list[int] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    logins: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def __post_init__(self) -> None:
        self.tokens[self.root_token] = [""]

    def put(self, path: str, data: dict[str, Any]) -> int:
        """Write a new version of ``path``; returns its version number."""
        with self.lock:
            versions = self.secrets_.setdefault(path, [])
            versions.append(_Version(dict(data), _now()))
            return len(versions)

    def delete_latest(self, path: str) -> None:
        """Soft-delete the latest version (what `vault kv delete` does)."""
        with self.lock:
            self.secrets_[path][-1].deletion_time = _now()

    def add_role(self, name: str, *, jwt: str, policies: list[str]) -> None:
        """A Kubernetes-auth role accepting ``jwt`` whose tokens read ``policies`` prefixes."""
        with self.lock:
            role = self.roles.setdefault(name, _Role(set(), list(policies)))
            role.jwts.add(jwt)

    def allow_jwt(self, role: str, jwt: str) -> None:
        """Accept another service-account token for ``role`` (a rotated projected token)."""
        with self.lock:
            self.roles[role].jwts.add(jwt)

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (5xx/412 are retryable)."""
        with self.lock:
            self.failures.extend([status] * times)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class _Handler(BaseHTTPRequestHandler):
    vault: VaultDouble

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _scripted_failure(self) -> bool:
        with self.vault.lock:
            self.vault.requests.append((self.command, self.path))
            status = self.vault.failures.pop(0) if self.vault.failures else None
        if status is None:
            return False
        self._send(status, {"errors": [f"scripted failure {status}"]})
        return True

    def do_POST(self) -> None:
        if self._scripted_failure():
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._send(400, {"errors": ["failed to parse JSON input"]})
            return
        if urlparse(self.path).path != f"/v1/auth/{self.vault.k8s_mount}/login":
            self._send(405, {"errors": ["unsupported path"]})
            return
        role_name, jwt = body.get("role"), body.get("jwt")
        with self.vault.lock:
            self.vault.logins.append({"role": str(role_name), "jwt": str(jwt)})
            role = self.vault.roles.get(str(role_name))
        if not role_name or not jwt:
            self._send(400, {"errors": ["missing role or jwt"]})
            return
        if role is None:
            self._send(400, {"errors": [f'invalid role name "{role_name}"']})
            return
        if jwt not in role.jwts:
            self._send(403, {"errors": ["permission denied"]})
            return
        token = "hvs." + secrets.token_urlsafe(24)
        with self.vault.lock:
            self.vault.tokens[token] = list(role.policies)
        self._send(
            200,
            {
                "auth": {
                    "client_token": token,
                    "lease_duration": 3600,
                    "renewable": True,
                    "policies": ["default"],
                }
            },
        )

    def do_GET(self) -> None:
        if self._scripted_failure():
            return
        url = urlparse(self.path)
        with self.vault.lock:
            allowed = self.vault.tokens.get(self.headers.get("X-Vault-Token", ""))
        if allowed is None:
            self._send(403, {"errors": ["permission denied"]})
            return
        prefix = f"/v1/{self.vault.kv_mount}/data/"
        if not url.path.startswith(prefix):
            self._send(404, {"errors": []})
            return
        path = url.path[len(prefix) :]
        if not any(f"{self.vault.kv_mount}/{path}".startswith(p) for p in allowed):
            self._send(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
            return
        query = parse_qs(url.query)
        with self.vault.lock:
            versions = list(self.vault.secrets_.get(path, []))
        wanted = int(query["version"][0]) if query.get("version") else len(versions)
        if not versions or wanted < 1 or wanted > len(versions):
            self._send(404, {"errors": []})
            return
        version = versions[wanted - 1]
        metadata = {
            "created_time": version.created_time,
            "deletion_time": version.deletion_time,
            "destroyed": False,
            "version": wanted,
            "custom_metadata": None,
        }
        if version.deletion_time:
            self._send(404, {"data": {"data": None, "metadata": metadata}})
            return
        self._send(
            200,
            {
                "request_id": secrets.token_hex(8),
                "lease_id": "",
                "renewable": False,
                "lease_duration": 0,
                "data": {"data": version.data, "metadata": metadata},
            },
        )


@contextmanager
def run_vault_double() -> Iterator[VaultDouble]:
    """Serve a fresh VaultDouble on a free loopback port for the duration of the block."""
    vault = VaultDouble()
    handler = type("Handler", (_Handler,), {"vault": vault})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    vault.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield vault
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
