"""A private containerd for tests: its own root, state, socket and config in a temporary directory,
driven with ctr, running containers with runc. Images come from archives (`ctr images import`), never
from a registry.

    with Containerd() as containerd:
        containerd.import_archive(Path("parley-api.tar"))
        result = containerd.run("localhost/parley-api:dev", "id", "-u")

Nothing system-wide is configured or left behind: `stop()` kills every task it started, deletes the
containers, stops the daemon (whose shims exit with their tasks) and removes the directory. It needs
root, like containerd itself.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from parley_testing.waiting import WaitTimeoutError, wait_for

TOOLS = ("containerd", "ctr", "runc", "containerd-shim-runc-v2")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOG_TAIL_CHARS = 4000
_ids = itertools.count()


class ContainerdUnavailableError(RuntimeError):
    """This machine cannot run the private containerd (a tool is missing, or we are not root)."""


def find_tools() -> dict[str, Path]:
    """The binaries this needs, by name; raises ContainerdUnavailableError naming every missing one."""
    if os.geteuid() != 0:
        raise ContainerdUnavailableError("containerd needs root (mounts, cgroups, namespaces)")
    found = {name: shutil.which(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise ContainerdUnavailableError(
            f"not on PATH: {', '.join(missing)} (Debian: apt-get install containerd runc)"
        )
    return {name: Path(path) for name, path in found.items() if path is not None}


def _tail(text: str) -> str:
    return text[-LOG_TAIL_CHARS:]


@dataclass(frozen=True)
class Mount:
    """One extra mount of a container, as `ctr run --mount` takes it."""

    type: str
    source: str
    destination: str
    options: tuple[str, ...] = ()

    @classmethod
    def bind(cls, source: Path, destination: str, *, read_only: bool = False) -> Mount:
        """``source`` on the host at ``destination`` in the container."""
        return cls("bind", str(source), destination, ("rbind", "ro" if read_only else "rw"))

    @classmethod
    def tmpfs(cls, destination: str, *, mode: int = 0o1777) -> Mount:
        """An empty in-memory directory (what an emptyDir volume is to a pod)."""
        return cls("tmpfs", "tmpfs", destination, ("nosuid", "nodev", f"mode={mode:o}"))

    def argument(self) -> str:
        """The value of ``--mount``."""
        value = f"type={self.type},src={self.source},dst={self.destination}"
        return f"{value},options={':'.join(self.options)}" if self.options else value


@dataclass
class Container:
    """A container started by ``Containerd.run_detached``: ``ctr run`` stays attached in the background,
    writing the container's output to ``log_path``, and exits with the container's exit code."""

    id: str
    process: subprocess.Popen[bytes]
    log_path: Path
    owner: Containerd

    def logs(self) -> str:
        """Everything the container wrote so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def exit_code(self) -> int | None:
        """The exit code once it has exited, else None."""
        return self.process.poll()

    def wait(self, timeout: float) -> int:
        """Wait for the exit; raises subprocess.TimeoutExpired when it does not come in time."""
        return self.process.wait(timeout=timeout)

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in the running container, as its user (what a Kubernetes exec probe does)."""
        exec_id = f"exec-{next(_ids)}"
        fifo_dir = str(self.owner.fifo_dir)
        args = ("task", "exec", "--fifo-dir", fifo_dir, "--exec-id", exec_id, self.id, *command)
        return self.owner.ctr(*args, check=False, timeout=timeout)

    def kill(self, sig: str = "SIGTERM") -> None:
        """Send ``sig`` to the container's init process (its entrypoint)."""
        self.owner.ctr("task", "kill", "--signal", sig, self.id)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, and SIGKILL if it has not exited within ``timeout``; returns the exit code."""
        if self.exit_code() is None:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.kill("SIGTERM")
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(subprocess.CalledProcessError):
                    self.kill("SIGKILL")
        return self.wait(timeout)


@dataclass
class Containerd:
    """One containerd daemon of our own; ``ctr`` talks to it in ``namespace``."""

    workdir: Path | None = None
    namespace: str = "parley-test"
    snapshotter: str = "overlayfs"
    tools: dict[str, Path] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    containers: list[Container] = field(default_factory=list)
    _owns_workdir: bool = False

    @property
    def address(self) -> Path:
        """The daemon's gRPC socket."""
        assert self.workdir is not None
        return self.workdir / "containerd.sock"

    @property
    def log_path(self) -> Path:
        """The daemon's own log (why it did not start, why a task failed)."""
        assert self.workdir is not None
        return self.workdir / "containerd.log"

    def start(self) -> None:
        """Write the config, start the daemon and wait until it answers."""
        self.tools = self.tools or find_tools()
        if self.workdir is None:
            # Short: unix socket paths are limited to 108 bytes.
            self.workdir = Path(tempfile.mkdtemp(prefix="parley-ctrd-"))
            self._owns_workdir = True
        config = self._write_config()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.tools["containerd"]), "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        process = self.process

        def answering() -> bool:
            if process.poll() is not None:
                raise ContainerdUnavailableError(f"containerd exited {process.returncode}")
            return self.ctr("version", check=False, timeout=5).returncode == 0

        try:
            wait_for(answering, "containerd to answer `ctr version`", timeout=START_TIMEOUT, retry_on=())
        except (ContainerdUnavailableError, WaitTimeoutError) as exc:
            self.stop()
            raise ContainerdUnavailableError(
                f"containerd did not start ({exc}):\n{self._daemon_log()}"
            ) from None

    def _write_config(self) -> Path:
        """Every path under the work directory; no CRI (Kubernetes is not involved), no metrics."""
        assert self.workdir is not None
        config = self.workdir / "config.toml"
        config.write_text(
            "\n".join(
                [
                    "version = 2",
                    f'root = "{self.workdir / "root"}"',
                    f'state = "{self.workdir / "state"}"',
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
                    "[grpc]",
                    f'  address = "{self.address}"',
                    "[ttrpc]",
                    f'  address = "{self.address}.ttrpc"',
                    "[debug]",
                    f'  address = "{self.workdir / "debug.sock"}"',
                    "[metrics]",
                    '  address = ""',
                    "",
                ]
            ),
            encoding="utf-8",
        )
        return config

    def _daemon_log(self) -> str:
        return _tail(self.log_path.read_text(errors="replace")) if self.log_path.exists() else "(no log)"

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ctr`` against this daemon; on failure (with ``check``) raise with its stderr."""
        result = subprocess.run(
            [str(self.tools["ctr"]), "--address", str(self.address), "--namespace", self.namespace, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
        return result

    def import_archive(self, archive: Path, timeout: float = 600) -> list[str]:
        """Import a docker or OCI archive; returns the names of the images it held."""
        before = set(self.images())
        self.ctr("images", "import", "--snapshotter", self.snapshotter, str(archive), timeout=timeout)
        names = sorted(set(self.images()) - before)
        return names or self._names_in(archive)

    def _names_in(self, archive: Path) -> list[str]:
        """Names an already imported archive carries (a second import adds no new name)."""
        import tarfile  # noqa: PLC0415 - only for re-imports

        with tarfile.open(archive) as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                return []
            return [tag for entry in json.load(member) for tag in entry.get("RepoTags") or []]

    def images(self) -> list[str]:
        """Names of the images in this namespace."""
        return self.ctr("images", "list", "--quiet").stdout.split()

    def image_config(self, image: str) -> dict[str, Any]:
        """The image's OCI config (``config`` holds User, Env, Entrypoint, ...)."""
        target = next(
            line.split()[2]
            for line in self.ctr("images", "list").stdout.splitlines()[1:]
            if line.split()[0] == image
        )
        manifest = self._content(target)
        if "manifests" in manifest:  # an index: the first manifest for this machine's platform
            manifest = self._content(manifest["manifests"][0]["digest"])
        return self._content(manifest["config"]["digest"])

    def _content(self, digest: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.ctr("content", "get", digest).stdout)
        return document

    @property
    def fifo_dir(self) -> Path:
        """Where ctr makes the FIFOs of a container's stdio (not the default /run/containerd/fifo)."""
        assert self.workdir is not None
        return self.workdir / "fifo"

    def private_dirs(self) -> list[str]:
        """``ctr run`` options that keep its FIFOs and runc's state in the work directory."""
        assert self.workdir is not None
        return ["--fifo-dir", str(self.fifo_dir), "--runc-root", str(self.workdir / "runc")]

    def _run_arguments(
        self,
        image: str,
        command: tuple[str, ...],
        *,
        name: str | None,
        env: dict[str, str] | None,
        mounts: tuple[Mount, ...],
        read_only: bool,
        net_host: bool,
    ) -> tuple[str, list[str]]:
        assert self.workdir is not None
        container_id = name or f"parley-{os.getpid()}-{next(_ids)}"
        args = ["run", "--rm", "--snapshotter", self.snapshotter, *self.private_dirs()]
        if net_host:
            args.append("--net-host")
        if read_only:
            args.append("--read-only")
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        for mount in mounts:
            args += ["--mount", mount.argument()]
        return container_id, [*args, image, container_id, *command]

    def run(
        self,
        image: str,
        *command: str,
        env: dict[str, str] | None = None,
        mounts: tuple[Mount, ...] = (),
        read_only: bool = True,
        net_host: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run a container to its end (the image's entrypoint, or ``command`` instead of it) and return
        its exit code and output; the root filesystem is read-only unless ``read_only=False``."""
        container_id, args = self._run_arguments(
            image, command, name=None, env=env, mounts=mounts, read_only=read_only, net_host=net_host
        )
        try:
            return self.ctr(*args, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            self._remove(container_id)
            raise

    def run_detached(
        self,
        image: str,
        *command: str,
        name: str | None = None,
        env: dict[str, str] | None = None,
        mounts: tuple[Mount, ...] = (),
        read_only: bool = True,
        net_host: bool = True,
    ) -> Container:
        """Start a container and return at once; ``Container`` reads its output and stops it."""
        assert self.workdir is not None
        container_id, args = self._run_arguments(
            image, command, name=name, env=env, mounts=mounts, read_only=read_only, net_host=net_host
        )
        log_path = self.workdir / f"{container_id}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    str(self.tools["ctr"]),
                    "--address",
                    str(self.address),
                    "--namespace",
                    self.namespace,
                    *args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        container = Container(container_id, process, log_path, self)
        self.containers.append(container)
        return container

    def _remove(self, container_id: str) -> None:
        """Kill and delete one container, whatever state it is in."""
        self.ctr("task", "kill", "--signal", "SIGKILL", container_id, check=False, timeout=10)
        self.ctr("task", "delete", "--force", container_id, check=False, timeout=30)
        self.ctr("containers", "delete", container_id, check=False, timeout=30)

    def stop(self) -> None:
        """Kill what still runs, stop the daemon and remove the work directory."""
        if self.process is not None and self.process.poll() is None:
            for container in self.containers:
                if container.exit_code() is None:
                    self._remove(container.id)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    container.wait(STOP_TIMEOUT)
            for container_id in self.ctr("containers", "list", "--quiet", check=False).stdout.split():
                self._remove(container_id)
            self._stop_daemon()
        if self.workdir is not None and self._owns_workdir:
            self._unmount_below(self.workdir)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_daemon(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)

    @staticmethod
    def _unmount_below(path: Path) -> None:
        """Unmount whatever containerd left mounted under ``path`` (deepest first)."""
        prefix = f"{path}/"
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
        for target in sorted(targets, key=len, reverse=True):
            subprocess.run(["umount", "--lazy", target], check=False, capture_output=True)

    def __enter__(self) -> Containerd:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
