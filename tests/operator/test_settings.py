"""OperatorSettings: the values the operator refuses to start with."""

from __future__ import annotations

from typing import Any

import pytest

from parley_core.settings import OperatorSettings, load_settings


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"operator_secret_label_selector": ""}, "never reads every Secret"),
        ({"operator_secret_label_selector": "a!=b"}, "does not require a label"),
        ({"operator_secret_label_selector": "!a"}, "does not require a label"),
        ({"operator_secret_label_selector": "a in (b)"}, "does not require a label"),
        ({"operator_secret_names": "Not_A_Name"}, "is not a Secret name"),
    ],
)
def test_secret_settings_refuse_what_would_read_unmeant_secrets(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match=message):
        load_settings(OperatorSettings, database_url="x://", **overrides)


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"operator_watch_client_timeout_seconds": 30}, "OPERATOR_WATCH_CLIENT_TIMEOUT_SECONDS"),
        ({"operator_retry_max_seconds": 0.1}, "OPERATOR_RETRY_MAX_SECONDS"),
    ],
)
def test_operator_settings_refuse_inconsistent_values(overrides: dict[str, Any], variable: str) -> None:
    with pytest.raises(Exception, match=variable):
        load_settings(OperatorSettings, database_url="x://", **overrides)
