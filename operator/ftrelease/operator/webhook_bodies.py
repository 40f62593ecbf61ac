"""What the webhooks receive (docs/notifications.md): a notice as generic JSON or as a Slack
incoming-webhook message, and the question a confirm webhook is asked. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ftrelease.api.ownership import ReleaseRef
from ftrelease.api.resource import API_VERSION
from ftrelease.api.status import Notice, StageStatus

NOTICE_KIND = "FineTuneReleaseNotification"
CONFIRM_KIND = "FineTuneReleaseConfirmation"
# Slack attachment colours: good news, something for a person to see, and a rollback.
_COLOURS = {"Normal": "good", "Warning": "warning"}
_BAD = ("RolledBack", "RollbackFailed", "Gated", "ProgressDeadlineExceeded")


def _release(ref: ReleaseRef) -> dict[str, str]:
    return {"name": ref.name, "namespace": ref.namespace, "uid": ref.uid}


def notice_json(ref: ReleaseRef, notice: Notice) -> dict[str, Any]:
    """The generic body. `id` is the same on every attempt: receivers drop repeats by it
    (delivery is at least once)."""
    stage = None
    if notice.stage is not None:
        stage = {"name": notice.stage, "weight": notice.weight, "mirror": notice.mirror}
    return {
        "apiVersion": API_VERSION,
        "kind": NOTICE_KIND,
        "id": f"{ref.uid}/{notice.sequence}",
        "sequence": notice.sequence,
        "time": notice.time.isoformat(),
        "release": _release(ref),
        "type": notice.type,
        "reason": notice.reason,
        "message": notice.message,
        "phase": notice.phase,
        "stage": stage,
        "candidateRevision": notice.candidate_revision,
        "stableRevision": notice.stable_revision,
    }


def notice_slack(ref: ReleaseRef, notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook message: one line of text, the details in an attachment."""
    colour = "danger" if notice.reason in _BAD else _COLOURS[notice.type]
    fields = [
        ("Phase", notice.phase),
        ("Stage", notice.stage and f"{notice.stage} ({_share(notice)})"),
        ("Candidate", notice.candidate_revision),
        ("Stable", notice.stable_revision),
    ]
    return {
        "text": f"*{ref.namespace}/{ref.name}* {notice.reason}: {notice.message}",
        "attachments": [
            {
                "color": colour,
                "fields": [
                    {"title": title, "value": value, "short": True}
                    for title, value in fields
                    if value
                ],
                "footer": f"finetune-release-operator #{notice.sequence}",
                "ts": int(notice.time.timestamp()),
            }
        ],
    }


def _share(notice: Notice) -> str:
    return f"mirror {notice.mirror}%" if notice.mirror else f"weight {notice.weight}%"


BODIES = {"json": notice_json, "slack": notice_slack}


def confirm_json(
    ref: ReleaseRef, stage: StageStatus, candidate: str, stable: str | None, now: datetime
) -> dict[str, Any]:
    """The question to a confirm webhook: may this stage start? 2xx: yes."""
    return {
        "apiVersion": API_VERSION,
        "kind": CONFIRM_KIND,
        "time": now.isoformat(),
        "release": _release(ref),
        "stage": {
            "index": stage.index,
            "name": stage.name,
            "weight": stage.weight,
            "mirror": stage.mirror,
        },
        "candidateRevision": candidate,
        "stableRevision": stable,
    }
