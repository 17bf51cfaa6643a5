"""Long-running node processes: started detached with a pid file, so `make node` and
`make node-down` work from separate shells and a test session can reuse a running node."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from parley_testing.waiting import WaitTimeoutError, wait_for

STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 30


class _ExitedError(Exception):
    """The daemon stopped while something waited for it (waiting longer cannot help)."""


class NodeError(RuntimeError):
    """A step of bringing the node up or down failed; the message says which and why."""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log, for error messages."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def _start_ticks(pid: int) -> str | None:
    """When the process started (clock ticks since boot): with the pid it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


@dataclass(frozen=True)
class Daemon:
    """One node process: its command line, the files it reads, its log and its pid file.

    The pid file holds the pid, the process's start time (a reused pid is not taken for ours) and a
    fingerprint of the command line and the files it reads (a change restarts it on the next `up`).
    """

    name: str
    argv: Sequence[str]
    run_dir: Path
    log_dir: Path
    inputs: Sequence[Path] = field(default=())

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def fingerprint(self) -> str:
        digest = hashlib.sha256("\0".join(self.argv).encode())
        for path in self.inputs:
            digest.update(path.read_bytes() if path.exists() else b"-")
        return digest.hexdigest()[:16]

    def _recorded(self) -> tuple[int, str, str] | None:
        try:
            pid, ticks, fingerprint = self.pid_file.read_text(encoding="utf-8").split()
            return int(pid), ticks, fingerprint
        except (FileNotFoundError, ValueError):
            return None

    def pid(self) -> int | None:
        """The recorded pid while that very process (same start time) still runs, else None."""
        recorded = self._recorded()
        if recorded is None:
            return None
        pid, ticks, _ = recorded
        return pid if _start_ticks(pid) == ticks else None

    def running(self) -> bool:
        return self.pid() is not None

    def outdated(self) -> bool:
        """Running, but started with another command line or other configuration files."""
        recorded = self._recorded()
        return self.running() and recorded is not None and recorded[2] != self.fingerprint()

    def start(self) -> None:
        """Start detached (own session, no controlling terminal), unless it already runs."""
        if self.running():
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ticks = _start_ticks(process.pid) or "0"
        self.pid_file.write_text(f"{process.pid} {ticks} {self.fingerprint()}\n", encoding="utf-8")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; removes the pid file."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, STOP_TIMEOUT):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, STOP_TIMEOUT)
        self.pid_file.unlink(missing_ok=True)

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float) -> None:
        """Poll `check` until it is true; fail with the log's tail if the process dies or time runs out."""

        def probe() -> bool:
            if not self.running():
                raise _ExitedError(f"{self.name} exited before {what}")
            return check()

        try:
            wait_for(
                probe,
                f"{self.name} {what}",
                timeout=timeout,
                interval=0.5,
                retry_on=(OSError, subprocess.SubprocessError, NodeError),
            )
        except (_ExitedError, WaitTimeoutError) as exc:
            raise NodeError(f"{exc}; last lines of {self.log_path}:\n{log_tail(self.log_path)}") from None


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait for a process (not our child: it was started by an earlier command) to disappear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child after all
        if _start_ticks(pid) is None:
            return True
        time.sleep(0.2)
    return False
