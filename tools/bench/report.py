"""Writing benchmark results in the one format every `make bench-*` uses: one record per goal with its
metric, value, unit, goal and whether it is met, plus the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Op = Literal["<=", ">="]


@dataclass(frozen=True)
class Goal:
    """One target of an issue with the value measured for it."""

    name: str
    value: float
    op: Op
    target: float

    @property
    def met(self) -> bool:
        """Computed from value, op and target, never set by hand."""
        return self.value <= self.target if self.op == "<=" else self.value >= self.target

    def verdict(self) -> str:
        """One line for the person waiting: `name: value op target -> met`."""
        return f"{self.name}: {self.value:.3f} {self.op} {self.target} -> {'met' if self.met else 'NOT met'}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "value": round(self.value, 3), "op": self.op, "target": self.target,
                "met": self.met}  # fmt: skip


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/max (and the count) of a list of milliseconds."""
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(ordered), "p50": round(statistics.median(ordered), 2), "p95": round(p95, 2),
            "max": round(ordered[-1], 2)}  # fmt: skip


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=RESULTS_DIR.parent).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine(postgres: str | None = None) -> dict[str, Any]:
    """What the numbers were measured on."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    info: dict[str, Any] = {"cpus": os.cpu_count(), "memory_gb": round(pages / 2**30),
                            "python": platform.python_version()}  # fmt: skip
    if postgres:
        info["postgres"] = postgres
    return info


def write(name: str, *, params: dict[str, Any], results: dict[str, Any], goals: list[Goal],
          postgres: str | None = None) -> Path:  # fmt: skip
    """Write tools/bench/results/<name>.json and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {
        "name": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "commit": _commit(),
        "machine": machine(postgres),
        "params": params,
        "results": results,
        "goals": [goal.as_dict() for goal in goals],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
