"""Pytest plugin: a real Vault dev server, with KV v2 and Kubernetes auth against the envtest apiserver.

`make envtest` builds Vault from the Go module proxy (tools/envtest/vault) and writes its path to
``envtest.env`` as ``PARLEY_VAULT``. The session fixture :func:`vault_server` starts it in dev mode on a
free loopback port, checks KV v2 at ``secret/``, enables the Kubernetes auth method configured against
the test kube-apiserver (TokenReview with a reviewer ServiceAccount bound to ``system:auth-delegator``),
and writes the policies and roles below — the same ones docs/guides/secrets-management.md shows.

Dev mode keeps everything in memory and starts unsealed, so a session costs about a second. Tests
that need Vault "down" stop a server of their own (:func:`vault_dev_server_factory`) or seal the
shared one for a moment (:meth:`VaultServer.sealed`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from parley_testing.envtest_tools import ENV_FILE_NAME, missing_tool, read_env_file, tools_dir
from parley_testing.kube import KubeControlPlane, ManagedProcess, free_ports, wait_until

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

VAULT_VAR = "PARLEY_VAULT"  # written by tools/envtest/install.sh
START_TIMEOUT = 30.0
KV_MOUNT = "secret"
K8S_MOUNT = "kubernetes"
# Tokens for Vault are requested with this audience and the roles insist on it, so a token meant
# for the Kubernetes API (or any other audience) cannot be replayed against Vault.
AUDIENCE = "vault"

# Who reviews tokens: a ServiceAccount of Vault's own, allowed to create TokenReviews.
REVIEWER_NAMESPACE = "vault"
REVIEWER_SERVICE_ACCOUNT = "vault-auth"
REVIEWER_BINDING = "vault-auth-delegator"

# The application side: the namespace the chart is installed in and its ServiceAccounts.
APP_NAMESPACE = "parley"
API_SERVICE_ACCOUNT = "parley-api"
BOT_SERVICE_ACCOUNT = "parley-bot"
OPERATOR_SERVICE_ACCOUNT = "parley-operator"
MIGRATIONS_SERVICE_ACCOUNT = "parley-migrations"

# Least privilege: each service reads exactly its own secret (the migration Job needs the API's
# database credentials); the operator also reads the ApiUser passwords under parley/dashboard/.
POLICIES: dict[str, str] = {
    "parley-api": textwrap.dedent(
        """\
        path "secret/data/parley/api" {
          capabilities = ["read"]
        }
        """
    ),
    "parley-bot": textwrap.dedent(
        """\
        path "secret/data/parley/bot" {
          capabilities = ["read"]
        }
        """
    ),
    "parley-operator": textwrap.dedent(
        """\
        path "secret/data/parley/operator" {
          capabilities = ["read"]
        }
        path "secret/data/parley/dashboard/*" {
          capabilities = ["read"]
        }
        """
    ),
    "parley-migrations": textwrap.dedent(
        """\
        path "secret/data/parley/api" {
          capabilities = ["read"]
        }
        """
    ),
}


def role_parameters(service_account: str, policy: str) -> dict[str, Any]:
    """Parameters of a Kubernetes-auth role: one ServiceAccount in one namespace, one policy."""
    return {
        "bound_service_account_names": [service_account],
        "bound_service_account_namespaces": [APP_NAMESPACE],
        "audience": AUDIENCE,
        "alias_name_source": "serviceaccount_uid",
        "token_policies": [policy],
        "token_ttl": "15m",
        "token_max_ttl": "1h",
    }


# role name -> its parameters (role names match the ServiceAccounts and the policies).
ROLES: dict[str, dict[str, Any]] = {
    "parley-api": role_parameters(API_SERVICE_ACCOUNT, "parley-api"),
    "parley-bot": role_parameters(BOT_SERVICE_ACCOUNT, "parley-bot"),
    "parley-operator": role_parameters(OPERATOR_SERVICE_ACCOUNT, "parley-operator"),
    "parley-migrations": role_parameters(MIGRATIONS_SERVICE_ACCOUNT, "parley-migrations"),
}


class VaultRequestError(AssertionError):
    """A setup request to Vault failed (the fixture's own calls, not the code under test)."""


@dataclass
class VaultServer:
    """A Vault dev server on a loopback port, driven over its HTTP API with the root token."""

    binary: Path
    workdir: Path
    root_token: str = field(default_factory=lambda: "root-" + secrets.token_hex(16), repr=False)
    port: int = 0
    process: ManagedProcess | None = None
    kube: KubeControlPlane | None = None

    @property
    def addr(self) -> str:
        """VAULT_ADDR of this server."""
        return f"http://127.0.0.1:{self.port}"

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start ``vault server -dev`` with a clean environment and wait until it is active."""
        self.port = free_ports(1)[0]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "vault",
            [
                # A clean environment: a developer's VAULT_* variables must not leak in, and HOME
                # points into the work dir so nothing touches ~/.vault-token.
                "/usr/bin/env",
                "-i",
                f"HOME={self.workdir}",
                f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}",
                str(self.binary),
                "server",
                "-dev",
                f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                "-dev-no-store-token",
                "-log-level=info",
            ],
            self.workdir / "vault.log",
        )
        self.process.start()
        self.wait_active()

    def wait_active(self) -> None:
        """Wait until /v1/sys/health answers 200 (initialized, unsealed, active)."""
        assert self.process is not None
        wait_until(self._healthy, self.process, "active (/v1/sys/health)", START_TIMEOUT)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.addr}/v1/sys/health", timeout=2).status_code == 200
        except httpx.TransportError as exc:
            raise OSError(str(exc)) from None

    def stop(self) -> None:
        """SIGTERM the server (SIGKILL after a grace period)."""
        if self.process is not None:
            self.process.stop()

    def running(self) -> bool:
        """Whether the server process is still alive."""
        return self.process is not None and self.process.exited() is None

    # ---- HTTP API ---------------------------------------------------------------------------
    def request(
        self, method: str, path: str, *, json: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Call ``/v1/<path>``; any status but 2xx raises with Vault's errors (never request data)."""
        response = httpx.request(
            method,
            f"{self.addr}/v1/{path}",
            json=json,
            headers={"X-Vault-Token": token or self.root_token},
            timeout=10,
        )
        if response.status_code >= 300:
            errors = response.json().get("errors") if response.content else None
            raise VaultRequestError(f"Vault {method} {path}: HTTP {response.status_code} {errors}")
        if response.status_code == 204 or not response.content:
            return {}
        body: dict[str, Any] = response.json()
        return body

    def put_secret(self, path: str, data: dict[str, Any]) -> int:
        """Write a new version of KV v2 ``secret/<path>``; returns the version number."""
        body = self.request("POST", f"{KV_MOUNT}/data/{path}", json={"data": data})
        return int(body["data"]["version"])

    def delete_latest(self, path: str) -> None:
        """Soft-delete the latest version of ``secret/<path>`` (what `vault kv delete` does)."""
        self.request("DELETE", f"{KV_MOUNT}/data/{path}")

    def destroy_all(self, path: str) -> None:
        """Delete ``secret/<path>`` with every version and its metadata."""
        self.request("DELETE", f"{KV_MOUNT}/metadata/{path}")

    def write_policy(self, name: str, hcl: str) -> None:
        """Create or replace an ACL policy."""
        self.request("PUT", f"sys/policies/acl/{name}", json={"policy": hcl})

    def write_role(self, name: str, parameters: dict[str, Any]) -> None:
        """Create or replace a Kubernetes-auth role."""
        self.request("POST", f"auth/{K8S_MOUNT}/role/{name}", json=parameters)

    def ensure_kv_v2(self) -> None:
        """Dev mode mounts KV v2 at secret/; verify that (and mount it if a build did not)."""
        mounts = self.request("GET", "sys/mounts")
        mount = (mounts.get("data") or mounts).get(f"{KV_MOUNT}/")
        if mount is None:
            self.request("POST", f"sys/mounts/{KV_MOUNT}", json={"type": "kv", "options": {"version": "2"}})
            return
        if mount.get("type") != "kv" or (mount.get("options") or {}).get("version") != "2":
            raise VaultRequestError(f"{KV_MOUNT}/ is mounted but is not KV v2: {mount}")

    # ---- sealing: Vault unavailable without losing its in-memory state ------------------------
    def unseal_key(self) -> str:
        """The dev server's unseal key, from its log (dev mode prints it at start)."""
        assert self.process is not None
        match = re.search(r"Unseal Key: (\S+)", self.process.log_path.read_text(errors="replace"))
        if match is None:
            raise VaultRequestError("the dev server did not log its unseal key")
        return match.group(1)

    def seal(self) -> None:
        """Seal Vault: every request but health/unseal now answers 503 until :meth:`unseal`."""
        self.request("PUT", "sys/seal")

    def unseal(self) -> None:
        """Unseal with the dev key and wait until the server is active again."""
        response = httpx.put(f"{self.addr}/v1/sys/unseal", json={"key": self.unseal_key()}, timeout=10)
        if response.status_code != 200 or response.json().get("sealed"):
            raise VaultRequestError(f"unseal failed: HTTP {response.status_code}")
        self.wait_active()

    @contextlib.contextmanager
    def sealed(self) -> Iterator[None]:
        """Keep Vault sealed for the block; it is unsealed again whatever happens inside."""
        self.seal()
        try:
            yield
        finally:
            self.unseal()

    # ---- Kubernetes auth ------------------------------------------------------------------
    def service_account_token(
        self, namespace: str, name: str, *, audience: str = AUDIENCE, seconds: int = 3600
    ) -> str:
        """A token of ServiceAccount ``namespace/name`` from the TokenRequest API (a projected token)."""
        assert self.kube is not None
        with self.kube.api_client() as api:
            return request_token(api, namespace, name, audience=audience, seconds=seconds)

    def token_file(self, directory: Path, namespace: str, name: str, *, audience: str = AUDIENCE) -> Path:
        """Write a fresh ServiceAccount token where VAULT_K8S_TOKEN_PATH can point (like the kubelet)."""
        path = directory / f"{namespace}-{name}.token"
        path.write_text(self.service_account_token(namespace, name, audience=audience))
        path.chmod(0o600)
        return path

    def kubernetes_env(
        self,
        directory: Path,
        *,
        role: str,
        secret_path: str,
        service_account: str | None = None,
        namespace: str = APP_NAMESPACE,
    ) -> dict[str, str]:
        """VAULT_* variables of a pod logging in as ``service_account`` (default: the role's name)."""
        token_path = self.token_file(directory, namespace, service_account or role)
        return {
            "VAULT_ADDR": self.addr,
            "VAULT_AUTH_METHOD": "kubernetes",
            "VAULT_ROLE": role,
            "VAULT_K8S_TOKEN_PATH": str(token_path),
            "VAULT_SECRET_PATH": secret_path,
        }


def request_token(api: ApiClient, namespace: str, name: str, *, audience: str, seconds: int) -> str:
    """TokenRequest for ServiceAccount ``namespace/name``."""
    from kubernetes import client  # noqa: PLC0415 - keep plugin import cheap when unused

    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[audience], expiration_seconds=seconds)
    )
    response = client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
    assert response.status is not None
    return str(response.status.token)


def ensure_service_account(api: ApiClient, namespace: str, name: str) -> None:
    """Create namespace and ServiceAccount unless they exist."""
    from kubernetes import client  # noqa: PLC0415

    core = client.CoreV1Api(api)
    with contextlib.suppress(client.ApiException):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
        )
    except client.ApiException as exc:
        if exc.status != 409:
            raise


def configure_kubernetes_auth(vault: VaultServer, plane: KubeControlPlane) -> None:
    """Enable Kubernetes auth on ``vault`` against ``plane`` and write the Parley policies and roles."""
    from kubernetes import client  # noqa: PLC0415

    vault.kube = plane
    with plane.api_client() as api:
        ensure_service_account(api, REVIEWER_NAMESPACE, REVIEWER_SERVICE_ACCOUNT)
        binding = client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=REVIEWER_BINDING),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="system:auth-delegator"
            ),
            subjects=[
                client.RbacV1Subject(
                    kind="ServiceAccount", name=REVIEWER_SERVICE_ACCOUNT, namespace=REVIEWER_NAMESPACE
                )
            ],
        )
        try:
            client.RbacAuthorizationV1Api(api).create_cluster_role_binding(binding)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        # The reviewer's token is for the Kubernetes API itself (default audience).
        reviewer_jwt = request_token(
            api,
            REVIEWER_NAMESPACE,
            REVIEWER_SERVICE_ACCOUNT,
            audience=plane_audience(),
            seconds=24 * 3600,
        )
        for name in (
            API_SERVICE_ACCOUNT,
            BOT_SERVICE_ACCOUNT,
            OPERATOR_SERVICE_ACCOUNT,
            MIGRATIONS_SERVICE_ACCOUNT,
        ):
            ensure_service_account(api, APP_NAMESPACE, name)

    assert plane.pki is not None
    vault.request("POST", f"sys/auth/{K8S_MOUNT}", json={"type": "kubernetes"})
    vault.request(
        "POST",
        f"auth/{K8S_MOUNT}/config",
        json={
            "kubernetes_host": plane.server,
            "kubernetes_ca_cert": plane.pki.ca_cert.read_text(),
            "token_reviewer_jwt": reviewer_jwt,
            "disable_local_ca_jwt": True,
        },
    )
    for name, hcl in POLICIES.items():
        vault.write_policy(name, hcl)
    for name, parameters in ROLES.items():
        vault.write_role(name, parameters)


def plane_audience() -> str:
    """The audience the test kube-apiserver accepts for its own API (its --api-audiences)."""
    from parley_testing.kube import SA_ISSUER  # noqa: PLC0415

    return SA_ISSUER


def vault_binary_path() -> Path:
    """The Vault binary from $PARLEY_VAULT or envtest.env; skips (fails under CI) when missing."""
    env_file = tools_dir() / ENV_FILE_NAME
    value = os.environ.get(VAULT_VAR) or read_env_file(env_file).get(VAULT_VAR)
    if not value:
        missing_tool(f"vault not found (neither {VAULT_VAR} nor {env_file} names it)")
    path = Path(str(value))
    if not (path.is_file() and os.access(path, os.X_OK)):
        missing_tool(f"{path} is not executable")
    return path


@contextlib.contextmanager
def running_vault(binary: Path) -> Iterator[VaultServer]:
    """A started dev server with KV v2 checked; stopped and its directory removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="parley-vault-"))
    server = VaultServer(binary=binary, workdir=workdir)
    try:
        try:
            server.start()
            server.ensure_kv_v2()
        except (RuntimeError, VaultRequestError) as exc:
            pytest.fail(f"Vault dev server did not start: {exc}", pytrace=False)
        yield server
    finally:
        server.stop()
        if os.environ.get("PARLEY_ENVTEST_KEEP"):
            print(f"\nPARLEY_ENVTEST_KEEP is set: kept the Vault log in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def vault_binary() -> Path:
    """Path of the pinned Vault binary (`make envtest`)."""
    return vault_binary_path()


@pytest.fixture(scope="session")
def vault_server(vault_binary: Path, kube_control_plane: KubeControlPlane) -> Iterator[VaultServer]:
    """The session's Vault: dev mode, KV v2 at secret/, Kubernetes auth against the test apiserver."""
    with running_vault(vault_binary) as server:
        try:
            configure_kubernetes_auth(server, kube_control_plane)
        except VaultRequestError as exc:
            pytest.fail(f"configuring Vault's Kubernetes auth failed: {exc}", pytrace=False)
        yield server


@pytest.fixture
def vault_dev_server_factory(vault_binary: Path) -> Iterator[Callable[[], VaultServer]]:
    """Start extra dev servers (token auth only) a test may stop; all are stopped afterwards."""
    with contextlib.ExitStack() as stack:

        def start() -> VaultServer:
            return stack.enter_context(running_vault(vault_binary))

        yield start


def role_command(name: str, mount: str = K8S_MOUNT) -> str:
    """The `vault write` command creating role ``name`` (docs/guides/secrets-management.md shows these)."""
    lines = [f"vault write auth/{mount}/role/{name}"]
    for key, value in ROLES[name].items():
        text = ",".join(value) if isinstance(value, list) else str(value)
        lines.append(f"    {key}={text}")
    return " \\\n".join(lines)


def policy_command(name: str) -> str:
    """The `vault policy write` command creating policy ``name`` from a here-document."""
    return f"vault policy write {name} - <<'EOF'\n{POLICIES[name]}EOF"
