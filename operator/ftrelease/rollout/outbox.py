"""The notifications' outbox in status: each Decision's Events become numbered notices for the
webhooks (spec.notifications.webhooks), written with the status that made them, so a restarted
operator sends what its predecessor had not. The notifier (operator/notifications.py) sends
them and records what each webhook acknowledged; notices every webhook has are dropped here.
Pure."""

from __future__ import annotations

from datetime import datetime

from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus, Notice, NotificationStatus, WebhookState
from ftrelease.api.verdict import Event

MAX_PENDING = 100  # kept for receivers that are down; beyond, the oldest are dropped, counted
MESSAGE_LIMIT = 1024  # as an Event's


def post(
    spec: FineTuneReleaseSpec, status: FineTuneReleaseStatus, events: list[Event], now: datetime
) -> None:
    """Adds `events` to the outbox as the status now stands, and drops the notices every
    webhook has acknowledged. Without webhooks there is no outbox."""
    hooks = spec.notifications.webhooks
    if not hooks:
        status.notifications = None
        return
    box = status.notifications or NotificationStatus()
    stage = status.stage
    for event in events:
        if not any(hook.wants(event.reason) for hook in hooks):
            continue
        box.sequence += 1
        box.pending.append(
            Notice(
                sequence=box.sequence,
                time=now,
                type=event.type,
                reason=event.reason,
                message=event.message[:MESSAGE_LIMIT],
                phase=status.phase,
                stage=stage.name if stage else None,
                weight=stage.weight if stage else None,
                mirror=stage.mirror if stage else None,
                candidate_revision=status.candidate_revision,
                stable_revision=status.stable_revision,
            )
        )
    box.webhooks = {h.name: box.webhooks.get(h.name) or WebhookState() for h in hooks}
    acknowledged = min(state.delivered for state in box.webhooks.values())
    box.pending = [n for n in box.pending if n.sequence > acknowledged]
    overflow = len(box.pending) - MAX_PENDING
    if overflow > 0:
        box.pending = box.pending[overflow:]
        box.dropped += overflow
    status.notifications = box


def undelivered(status: FineTuneReleaseStatus, hook: str, sent: int = 0) -> list[Notice]:
    """The notices `hook` has not acknowledged (nor been sent, up to `sent`), oldest first."""
    box = status.notifications
    if box is None:
        return []
    state = box.webhooks.get(hook) or WebhookState()
    after = max(state.delivered, sent)
    return [n for n in box.pending if n.sequence > after]
