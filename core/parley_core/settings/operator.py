"""Settings of the ApiUser operator (parley_operator)."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from parley_core.settings.base import ParleySettings, split_commas

# The label an operator in label mode requires on password Secrets (docs/operator.md#which-secrets).
DEFAULT_SECRET_LABEL_SELECTOR = "parley.dev/apiuser-password=true"  # noqa: S105 - a label, not a secret
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
# A selector term that only a labelled object matches: `key`, `key=value`, `key==value`.
_REQUIRED_LABEL = re.compile(rf"({_DNS_SUBDOMAIN.pattern}/)?{_LABEL_NAME}(==?({_LABEL_NAME})?)?")


class OperatorSettings(ParleySettings):
    """The ApiUser operator (parley_operator): ApiUser resources -> api_users rows."""

    operator_host: str = Field(
        default="127.0.0.1",
        description="Address of the liveness and metrics endpoints; 0.0.0.0 in a container.",
    )
    operator_health_port: int = Field(
        default=8080, ge=1, le=65535, description="Port of kopf's liveness endpoint (`/healthz`)."
    )
    operator_metrics_port: int = Field(
        default=9090, ge=1, le=65535, description="Port of the Prometheus `/metrics` endpoint."
    )
    operator_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated namespaces to watch (ApiUsers and their Secrets); empty watches "
        "the whole cluster (needs a ClusterRole).",
    )
    operator_resync_seconds: float = Field(
        default=300.0,
        ge=5,
        description="How often every ApiUser is checked against its row and source; drift (a row deleted "
        "or altered behind the operator's back) is repaired within this time. An unchanged user costs "
        "one Secret read and one row read, never a bcrypt hash.",
    )
    operator_retry_base_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay after a temporary error; doubles per retry."
    )
    operator_retry_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest retry delay after temporary errors (database, Vault, API)."
    )
    operator_hash_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="bcrypt hashes computed at once; each takes one CPU core for about 0.25 s at cost 12.",
    )
    operator_min_password_length: int = Field(
        default=12, ge=1, le=72, description="Shortest password accepted from a Secret or Vault (characters)."
    )
    operator_kube_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of one Kubernetes API request made by the operator."
    )
    operator_watch_server_timeout_seconds: int = Field(
        default=60,
        ge=10,
        description="Server-side length of one watch request; the watch is then re-opened.",
    )
    operator_watch_client_timeout_seconds: float = Field(
        default=90.0,
        gt=0,
        description="Client-side limit of one watch request, so a stalled watch is noticed and re-opened.",
    )
    operator_watch_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout to open a watch connection."
    )
    operator_secret_label_selector: str = Field(
        default=DEFAULT_SECRET_LABEL_SELECTOR,
        description="Label mode (the default): the operator reads passwords only from Secrets with these "
        "labels, through a labelled list and watch; an ApiUser naming a Secret without them gets "
        "`Ready=False` reason `SecretNotLabelled`. Only comma-separated `key=value` or `key` terms "
        "(`!=`, `!key`, `in`, `notin` are refused: some match Secrets without the label). Unused when "
        "OPERATOR_SECRET_NAMES is set; empty only together with it.",
    )
    operator_secret_names: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Named mode: comma-separated names of the only Secrets the operator reads (in each "
        "watched namespace), each read by GET, so a Role with `resourceNames` can enforce it; an "
        "ApiUser naming another Secret gets `Ready=False` reason `SecretNotAllowed`. Set, it replaces "
        "the label selector and the Secret watch (a watch cannot be limited to several names).",
    )
    operator_secret_poll_seconds: float = Field(
        default=30.0,
        ge=1,
        description="Named mode only: how often each ApiUser's Secret is read to notice a rotation (no "
        "watch); a changed Secret reaches its row within this time. One Secret GET per ApiUser.",
    )

    @field_validator("operator_namespaces", "operator_secret_names", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        return split_commas(value)

    @field_validator("operator_secret_names")
    @classmethod
    def _secret_names_are_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
                raise ValueError(f"{name!r} is not a Secret name (a DNS subdomain: a-z, 0-9, '-', '.')")
        return value

    @field_validator("operator_secret_label_selector")
    @classmethod
    def _selector_requires_labels(cls, value: str) -> str:
        terms = [term.strip() for term in value.split(",")] if value.strip() else []
        for term in terms:
            if not _REQUIRED_LABEL.fullmatch(term):
                raise ValueError(
                    f"term {term!r} does not require a label: use comma-separated key=value or key terms "
                    "(e.g. parley.dev/apiuser-password=true), never !=, !key, in or notin"
                )
        return ",".join(terms)

    @model_validator(mode="after")
    def _watch_timeouts_in_order(self) -> Self:
        if self.operator_watch_client_timeout_seconds <= self.operator_watch_server_timeout_seconds:
            raise ValueError(
                "OPERATOR_WATCH_CLIENT_TIMEOUT_SECONDS must exceed OPERATOR_WATCH_SERVER_TIMEOUT_SECONDS"
            )
        if self.operator_retry_max_seconds < self.operator_retry_base_seconds:
            raise ValueError("OPERATOR_RETRY_MAX_SECONDS must be at least OPERATOR_RETRY_BASE_SECONDS")
        if not self.operator_secret_names and not self.operator_secret_label_selector:
            raise ValueError(
                "OPERATOR_SECRET_LABEL_SELECTOR is empty and OPERATOR_SECRET_NAMES unset: the operator "
                "never reads every Secret; set a label selector (e.g. "
                f"{DEFAULT_SECRET_LABEL_SELECTOR}) or name the Secrets"
            )
        return self
