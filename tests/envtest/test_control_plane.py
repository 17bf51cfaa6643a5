"""Proves the envtest control plane is a real API server: CRDs, schemas, RBAC, TokenRequest."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any, cast

import pytest
from kubernetes import client

from parley_testing.kube import SA_ISSUER, KubeControlPlane

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

pytestmark = pytest.mark.kube

GROUP = "test.parley.dev"
WIDGET_CRD = textwrap.dedent(
    f"""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.{GROUP}
    spec:
      group: {GROUP}
      scope: Namespaced
      names: {{plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}}
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  required: [size]
                  properties:
                    size: {{type: integer, minimum: 1}}
                    color: {{type: string}}
    """
)


def widget(name: str, size: int) -> str:
    """Render a Widget manifest."""
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"size": size, "color": "teal"},
        }
    )


@pytest.fixture
def widget_crd(kube_control_plane: KubeControlPlane) -> None:
    """Install the Widget CRD (idempotent) and wait until it is Established."""
    kube_control_plane.kubectl("apply", "-f", "-", input=WIDGET_CRD)
    kube_control_plane.kubectl("wait", "--for=condition=Established", f"crd/widgets.{GROUP}", "--timeout=30s")


@pytest.mark.usefixtures("widget_crd")
def test_custom_resource_round_trip(
    kube_control_plane: KubeControlPlane, kube_api: ApiClient, kube_namespace: str
) -> None:
    """A Widget created with kubectl reads back identically via kubectl and the Python client."""
    kube_control_plane.kubectl("apply", "-n", kube_namespace, "-f", "-", input=widget("w1", 3))

    via_kubectl = kube_control_plane.kubectl(
        "get", "widget", "w1", "-n", kube_namespace, "-o", "jsonpath={.spec.size}/{.spec.color}"
    )
    assert via_kubectl.stdout == "3/teal"

    custom = client.CustomObjectsApi(kube_api)
    obj = cast(
        "dict[str, Any]",
        custom.get_namespaced_custom_object(GROUP, "v1", kube_namespace, "widgets", "w1"),
    )
    assert obj["kind"] == "Widget"
    assert obj["spec"] == {"size": 3, "color": "teal"}
    assert obj["metadata"]["namespace"] == kube_namespace
    listed = cast(
        "dict[str, Any]",
        custom.list_namespaced_custom_object(GROUP, "v1", kube_namespace, "widgets"),
    )
    assert [item["metadata"]["name"] for item in listed["items"]] == ["w1"]


@pytest.mark.usefixtures("widget_crd")
def test_custom_resource_schema_is_enforced(
    kube_control_plane: KubeControlPlane, kube_namespace: str
) -> None:
    """The API server rejects a Widget that violates the CRD's OpenAPI schema."""
    result = kube_control_plane.kubectl(
        "apply", "-n", kube_namespace, "-f", "-", input=widget("bad", 0), check=False
    )
    assert result.returncode != 0
    assert "spec.size" in result.stderr
    assert "should be greater than or equal to 1" in result.stderr
    missing = kube_control_plane.kubectl(
        "get", "widget", "bad", "-n", kube_namespace, "--ignore-not-found", "-o", "name"
    )
    assert missing.stdout == ""


def grant_configmap_reader(api: ApiClient, namespace: str, account: str) -> None:
    """Create a ServiceAccount with a Role that may only get/list ConfigMaps in `namespace`."""
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=account, namespace=namespace)],
        ),
    )


def request_token(api: ApiClient, namespace: str, account: str) -> str:
    """Mint a short-lived token for a ServiceAccount through the TokenRequest API."""
    response = client.CoreV1Api(api).create_namespaced_service_account_token(
        account,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[SA_ISSUER], expiration_seconds=600)
        ),
    )
    assert response.status is not None
    token = response.status.token
    assert isinstance(token, str)
    assert token.count(".") == 2, "TokenRequest should return a signed JWT"
    return token


def status_of(call: Any, *args: Any) -> int:
    """Invoke an API call and return its HTTP status (200 on success)."""
    try:
        call(*args)
    except client.ApiException as exc:
        return int(exc.status)
    return 200


def test_service_account_token_is_bound_by_rbac(
    kube_control_plane: KubeControlPlane, kube_api: ApiClient, kube_namespace: str
) -> None:
    """A TokenRequest token authenticates as its ServiceAccount and has only its Role's rights."""
    admin_core = client.CoreV1Api(kube_api)
    other_namespace = f"{kube_namespace}-other"
    admin_core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other_namespace)))
    try:
        admin_core.create_namespaced_config_map(
            kube_namespace,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name="visible"), data={"k": "v"}),
        )
        grant_configmap_reader(kube_api, kube_namespace, "reader")
        token = request_token(kube_api, kube_namespace, "reader")

        with kube_control_plane.api_client(token=token) as sa_api:
            review = client.AuthenticationV1Api(sa_api).create_self_subject_review(
                client.V1SelfSubjectReview()
            )
            assert review.status is not None
            assert review.status.user_info is not None
            assert review.status.user_info.username == (f"system:serviceaccount:{kube_namespace}:reader")

            core = client.CoreV1Api(sa_api)
            listed = core.list_namespaced_config_map(kube_namespace)
            names = [cm.metadata.name for cm in listed.items if cm.metadata is not None]
            assert names == ["visible"]
            assert core.read_namespaced_config_map("visible", kube_namespace).data == {"k": "v"}

            assert status_of(core.list_namespaced_secret, kube_namespace) == 403
            assert status_of(core.list_namespaced_config_map, other_namespace) == 403
            assert status_of(core.delete_namespaced_config_map, "visible", kube_namespace) == 403

        with kube_control_plane.api_client(token=token + "tampered") as forged:
            forged_core = client.CoreV1Api(forged)
            assert status_of(forged_core.list_namespaced_config_map, kube_namespace) == 401
    finally:
        admin_core.delete_namespace(other_namespace)
