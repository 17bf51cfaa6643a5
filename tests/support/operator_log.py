"""Reading the operator's JSON log in tests."""

from __future__ import annotations

import json
import re

_REFUSAL = re.compile(r"(?<!\d)403(?!\d)|forbidden", re.IGNORECASE)


def refusals(log: str) -> list[str]:
    """The operator's log lines that report an API refusal (HTTP 403 or Forbidden).

    A line's timestamp is left out of the match: its microseconds contain "403" now and then.
    """
    found = []
    for line in log.splitlines():
        searched = line
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict):
            searched = json.dumps({key: value for key, value in event.items() if key != "timestamp"})
        if _REFUSAL.search(searched):
            found.append(line)
    return found
