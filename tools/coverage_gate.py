"""Fail when any package with code is below the line-coverage bar (default 85 %).

pytest-cov's --cov-fail-under checks the total only; a well-tested core must not hide an
untested service, so each package is checked on its own from coverage's JSON report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PACKAGES = ("core/parley_core", "api/parley_api", "bot/parley_bot", "operator/parley_operator")


def package_totals(report: dict[str, object], package: str) -> tuple[int, int]:
    """(statements, covered) over every file of ``package`` in a coverage JSON report."""
    files = report.get("files", {})
    assert isinstance(files, dict)
    statements = covered = 0
    for path, data in files.items():
        if Path(path).as_posix().startswith(package + "/"):
            summary = data["summary"]
            statements += int(summary["num_statements"])
            covered += int(summary["covered_lines"])
    return statements, covered


def main(argv: list[str] | None = None) -> int:
    """Print each package's coverage; exit 1 if one with code is under the bar."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", type=Path, nargs="?", default=Path("coverage.json"))
    parser.add_argument("--fail-under", type=float, default=85.0)
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    failed = False
    for package in PACKAGES:
        statements, covered = package_totals(report, package)
        if statements == 0:
            print(f"coverage {package:28} no code yet")
            continue
        percent = 100.0 * covered / statements
        verdict = "ok" if percent >= args.fail_under else f"FAIL (< {args.fail_under:.0f}%)"
        failed |= percent < args.fail_under
        print(f"coverage {package:28} {percent:6.2f}% of {statements} lines  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
