"""parley_operator.runtime: the state handlers share, and the retry backoff."""

from __future__ import annotations

import kopf
import pytest

from parley_core.settings import OperatorSettings, load_settings
from parley_operator.runtime import Runtime, runtime


def test_runtime_requires_startup_and_backs_off_exponentially() -> None:
    settings = load_settings(
        OperatorSettings, operator_retry_base_seconds=1, operator_retry_max_seconds=10, database_url="x://"
    )
    rt = Runtime(settings=settings, reconciler=None, custom_api=None)  # type: ignore[arg-type]

    assert [rt.backoff(n) for n in range(6)] == [1, 2, 4, 8, 10, 10]
    assert runtime(kopf.Memo(runtime=rt)) is rt
    with pytest.raises(kopf.TemporaryError):
        runtime(kopf.Memo())
