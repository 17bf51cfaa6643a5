"""parley_operator.handlers: the kopf handlers called directly, their indexes and registration."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest

from parley_core.settings import OperatorSettings, load_settings
from parley_operator import handlers
from parley_operator.__main__ import kopf_settings
from parley_operator.runtime import Runtime
from tests.operator.support import PASSWORD, UID, FakeSecrets, body, reconciler


def test_indexes_and_the_secret_filter() -> None:
    annotations = {"parley.dev/secret-version": "u/1"}
    with_secret = kopf.Body(cast(kopf.RawBody, body()))
    raw_vault = body(vault={})
    del raw_vault["spec"]["passwordSecretRef"]
    with_vault = kopf.Body(cast(kopf.RawBody, raw_vault))

    by_secret = handlers.apiusers_by_secret(
        namespace="ns", name="alice", spec=with_secret.spec, annotations=annotations
    )

    assert by_secret == {("ns", "alice-pw"): ("alice", "u/1")}
    assert handlers.apiusers_by_secret(namespace="ns", name="a", spec=with_vault.spec, annotations={}) is None
    assert handlers.apiuser_uids(uid=UID) == {UID: True}
    assert handlers.is_referenced(namespace="ns", name="alice-pw", apiusers_by_secret={("ns", "alice-pw"): 1})
    assert not handlers.is_referenced(namespace="ns", name="x", apiusers_by_secret={})


async def test_an_invalid_spec_is_a_permanent_error_with_a_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "event", lambda _body, **kwargs: events.append(kwargs))
    settings = load_settings(OperatorSettings, database_url="postgresql://x@127.0.0.1:1/x")
    memo = kopf.Memo(runtime=Runtime(settings=settings, reconciler=None, custom_api=None))  # type: ignore[arg-type]
    patch = kopf.Patch()
    kopf_body = kopf.Body(cast(kopf.RawBody, body(username="Not Valid")))

    with pytest.raises(kopf.PermanentError, match=r"spec\.username"):
        await handlers.sync_apiuser(
            param="create",
            body=kopf_body,
            status=kopf_body.status,
            retry=0,
            memo=memo,
            patch=patch,
            apiuser_uids={},
        )

    assert patch["status"]["conditions"][0]["reason"] == "InvalidSpec"
    assert events[0]["type"] == "Warning"


def test_secret_modes_label_by_default_names_when_set() -> None:
    default = load_settings(OperatorSettings, database_url="x://")
    custom = load_settings(
        OperatorSettings, database_url="x://", operator_secret_label_selector=" team=a , parley.dev/pw "
    )
    named = load_settings(
        OperatorSettings,
        database_url="x://",
        operator_secret_names="one, two.x",
        operator_secret_label_selector="",
    )

    assert (default.operator_secret_label_selector, default.operator_secret_names) == (
        "parley.dev/apiuser-password=true",
        [],
    )
    assert custom.operator_secret_label_selector == "team=a,parley.dev/pw"
    assert named.operator_secret_names == ["one", "two.x"]
    assert list(kopf_settings(named).watching.label_selectors.values()) == []  # no Secret watch at all
    label_registry, named_registry = kopf.OperatorRegistry(), kopf.OperatorRegistry()
    handlers.register(label_registry, default)
    handlers.register(named_registry, named)
    watched = {str(h.id) for h in label_registry._watching.get_all_handlers()}
    timers = {str(h.id) for h in named_registry._spawning.get_all_handlers()}
    assert watched == {"secret_changed"}
    assert named_registry._watching.get_all_handlers() == []
    assert timers == {"apiuser_resync", "secret_poll"}


class FakeCustomApi:
    """CustomObjectsApi.patch_namespaced_custom_object, recording the annotations it was given."""

    def __init__(self) -> None:
        self.stamped: list[tuple[str, str]] = []

    def patch_namespaced_custom_object(self, *args: Any, **_: Any) -> None:
        name, patch = args[4], args[5]
        self.stamped.append((name, patch["metadata"]["annotations"]["parley.dev/secret-version"]))


async def test_secret_poll_stamps_only_a_version_the_row_lacks() -> None:
    settings = load_settings(OperatorSettings, database_url="x://", operator_secret_names="alice-pw")
    secrets = FakeSecrets()
    secrets.put("alice-pw", PASSWORD)  # uid-alice-pw, resourceVersion 1
    custom = FakeCustomApi()
    rt = Runtime(settings=settings, reconciler=reconciler(None, secrets), custom_api=custom)  # type: ignore[arg-type]
    memo = kopf.Memo(runtime=rt)
    spec = kopf.Body(cast(kopf.RawBody, body())).spec

    async def poll(status: dict[str, Any], annotations: dict[str, str]) -> None:
        await handlers.secret_poll(
            namespace="ns", name="alice", spec=spec, status=status, annotations=annotations, memo=memo
        )

    await poll({"fingerprint": "secret:uid-alice-pw@1#password"}, {})  # in step: nothing
    secrets.put("alice-pw", "a-rotated-password")  # resourceVersion 2
    await poll({"fingerprint": "secret:uid-alice-pw@1#password"}, {})  # rotated: stamp
    await poll(
        {"fingerprint": "secret:uid-alice-pw@1#password"}, {"parley.dev/secret-version": "uid-alice-pw/2"}
    )
    del secrets.items["ns", "alice-pw"]
    await poll(
        {"fingerprint": "secret:uid-alice-pw@2#password"}, {"parley.dev/secret-version": "uid-alice-pw/2"}
    )
    await poll({}, {"parley.dev/secret-version": "deleted"})
    vault = kopf.Body(cast(kopf.RawBody, body(vault={"path": "a", "key": "b"}, passwordSecretRef=None))).spec
    await handlers.secret_poll(namespace="ns", name="v", spec=vault, status={}, annotations={}, memo=memo)

    assert custom.stamped == [("alice", "uid-alice-pw/2"), ("alice", "deleted")]
