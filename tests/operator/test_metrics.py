"""parley_operator.metrics: the gauges the operator exports."""

from __future__ import annotations

from parley_operator import metrics


def test_managed_users_gauge_counts_ready_and_not() -> None:
    metrics.set_managed({"a": True, "b": False, "c": True})

    assert metrics.MANAGED_USERS.labels(ready="true")._value.get() == 2
    assert metrics.MANAGED_USERS.labels(ready="false")._value.get() == 1
