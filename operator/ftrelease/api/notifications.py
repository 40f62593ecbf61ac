"""Notifications: webhooks told of every transition of a release (spec.notifications.webhooks)
and confirm webhooks asked before each stage starts (spec.notifications.confirm). The outbox
that carries the first across operator restarts is status.notifications (api.status)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import ApiModel, cel_rules
from .fields import DnsLabel, DnsSubdomain, Duration, NonEmptyStr, cel

# What a release can tell: the reasons of its Events (kubectl describe shows the same ones).
REASONS = (
    "RolloutStarted",
    "EvalsPassed",
    "Gated",
    "DeclaredScoresDiffer",
    "AwaitingConfirmation",
    "StageStarted",
    "StageCompleted",
    "AwaitingApproval",
    "Approved",
    "MovedOn",
    "Paused",
    "Resumed",
    "Inconclusive",
    "AnalysisError",
    "AnalysisErrorPaused",
    "AnalysisRecovered",
    "ProgressDeadlineExceeded",
    "Analysis",
    "Promoted",
    "Superseded",
    "RollbackStarted",
    "RolledBack",
    "RollbackFailed",
    "RollbackRefused",
    "CommandIgnored",
    "Retry",
)
Reason = Literal[REASONS]  # type: ignore[valid-type]
# Sent unless a webhook lists its reasons: every transition, but not each metric's outcome
# change (several per stage; the RolledBack that follows a Fail names the metric).
DEFAULT_LEFT_OUT = ("Analysis",)
MAX_WEBHOOKS = 8


class SecretKeyRef(ApiModel):
    name: DnsSubdomain = Field(description="A Secret in the release's namespace.")
    key: NonEmptyStr


class UrlSource(ApiModel):
    secret_key_ref: SecretKeyRef = Field(
        description="The Secret key holding the URL: webhook URLs carry credentials."
    )


NAMES_UNIQUE = cel("self.all(h, self.exists_one(o, o.name == h.name))", "names must be unique")


def _unique(hooks: list) -> list:
    names = [h.name for h in hooks]
    if len(set(names)) != len(names):
        raise ValueError(NAMES_UNIQUE["message"])
    return hooks


class Webhook(ApiModel):
    name: DnsLabel = Field(description="Names the webhook in status and Events.")
    url_from: UrlSource
    format: Literal["json", "slack"] = Field(
        default="json",
        description="json: the notification as one JSON object; slack: a Slack incoming-webhook "
        "message (text and an attachment).",
    )
    reasons: list[Reason] = Field(  # type: ignore[valid-type]
        default_factory=list,
        max_length=len(REASONS),
        description="Only these transitions (Event reasons). Empty: every one but the "
        "per-metric Analysis outcomes.",
    )
    timeout: Duration = Field(default="5s", description="Per request.")

    def wants(self, reason: str) -> bool:
        return reason in self.reasons if self.reasons else reason not in DEFAULT_LEFT_OUT


class ConfirmWebhook(ApiModel):
    name: DnsLabel = Field(description="Names the webhook in status and Events.")
    url_from: UrlSource
    timeout: Duration = Field(default="10s", description="Per request.")
    retry: Duration = Field(default="10s", description="How soon a refusal is asked again.")


class Notifications(ApiModel):
    webhooks: list[Webhook] = Field(
        default_factory=list,
        max_length=MAX_WEBHOOKS,
        description="Told of every transition, in order, at least once (retried with backoff).",
        json_schema_extra=cel_rules(NAMES_UNIQUE),
    )
    confirm: list[ConfirmWebhook] = Field(
        default_factory=list,
        max_length=MAX_WEBHOOKS,
        description="Asked before each stage starts (the stage is in the request): the stage "
        "starts once every one has answered 2xx.",
        json_schema_extra=cel_rules(NAMES_UNIQUE),
    )

    @field_validator("webhooks", "confirm")
    @classmethod
    def _unique_names(cls, hooks: list) -> list:
        return _unique(hooks)
