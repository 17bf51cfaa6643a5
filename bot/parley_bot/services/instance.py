"""This bot process as a holder of users' leases.

A lease names the process (``bot_instances``), not a turn: the process's own next turn for a user
never waits on it, and it is free for others as soon as the process stops heartbeating. Judging
another process dead needs care after a database outage — every heartbeat failed meanwhile — so a
process takes over another's leases only once its own heartbeats have succeeded for a whole
staleness period. In polling mode exactly one process runs, so any other holder is a dead
predecessor and is taken over at once.
"""

from __future__ import annotations

import socket
import time
import uuid

from parley_core.repositories.turns import LeaseTerms


class Instance:
    """Identity and database view of this process."""

    def __init__(self, *, mode: str, stale_seconds: float) -> None:
        self.id = uuid.uuid4()
        self.mode = mode
        self.hostname = socket.gethostname()
        self.stale_seconds = stale_seconds
        self._heartbeats_since: float | None = None

    def heartbeat_succeeded(self) -> None:
        """A heartbeat reached the database."""
        if self._heartbeats_since is None:
            self._heartbeats_since = time.monotonic()

    def heartbeat_failed(self) -> None:
        """A heartbeat did not reach the database."""
        self._heartbeats_since = None

    def may_take_over(self) -> bool:
        """Whether this process may treat a process with an old heartbeat as dead."""
        if self.mode == "polling":
            return True
        since = self._heartbeats_since
        return since is not None and time.monotonic() - since >= self.stale_seconds

    def lease_terms(self) -> LeaseTerms:
        """How this process asks for a user's lease right now."""
        return LeaseTerms(holder=self.id, stale_seconds=self.stale_seconds, take_over=self.may_take_over())
