"""The one error settings loading raises."""

from __future__ import annotations


class SettingsError(RuntimeError):
    """Settings could not be loaded; each problem is named by its variable, never by its value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))
