"""Long-running node processes: started detached with a pid file, so `make node` and
`make node-down` work from separate shells and a test session can reuse a running node."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 30


class NodeError(RuntimeError):
    """A step of bringing the node up or down failed; the message says which and why."""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log, for error messages."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


@dataclass(frozen=True)
class Daemon:
    """One node process: its command line, its log and its pid file."""

    name: str
    argv: Sequence[str]
    run_dir: Path
    log_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The recorded pid when that process still runs our binary, else None."""
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        return pid if cmdline.split(b"\0", 1)[0] == os.fsencode(self.argv[0]) else None

    def running(self) -> bool:
        return self.pid() is not None

    def outdated(self) -> bool:
        """Running with another command line than this one (a newer `make node` changed a flag)."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except FileNotFoundError:
            return False
        return cmdline != [os.fsencode(arg) for arg in self.argv]

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
        self.pid_file.write_text(f"{process.pid}\n", encoding="utf-8")
        # Until the child has exec'd, its command line is still ours: wait for the switch, so a
        # check right after start does not take the daemon for gone.
        deadline = time.monotonic() + 5
        while not self.running() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)

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
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if not self.running():
                raise NodeError(
                    f"{self.name} exited before {what}; last lines of {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            try:
                if check():
                    return
            except (OSError, subprocess.SubprocessError) as exc:
                last_error = f" ({type(exc).__name__}: {exc})"
            time.sleep(0.5)
        raise NodeError(
            f"{self.name} not {what} after {timeout:.0f}s{last_error}; last lines of {self.log_path}:\n"
            f"{log_tail(self.log_path)}"
        )


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait for a process (not our child: it was started by an earlier command) to disappear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child after all
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.2)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True
