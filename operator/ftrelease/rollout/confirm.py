"""Confirm webhooks (spec.notifications.confirm): before a stage starts, every one must have
answered 2xx for it. Asking is the operator's I/O (operator/notifications.py); which stage to
ask about, and what the answers mean for the stage, is decided here. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from ftrelease.api.durations import parse_duration
from ftrelease.api.notifications import ConfirmWebhook
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus

from .bookkeeping import Bookkeeping


@dataclass(frozen=True)
class ConfirmRequest:
    """A stage that waits for confirm webhooks, and the ones still to answer 2xx."""

    candidate: str
    stage: int
    hooks: tuple[ConfirmWebhook, ...]


def wanted(spec: FineTuneReleaseSpec, status: FineTuneReleaseStatus) -> ConfirmRequest | None:
    """The stage waiting for confirmation (the planner marked it so), or None."""
    stage, candidate = status.stage, status.candidate_revision
    if stage is None or candidate is None or stage.confirm_waiting_since is None:
        return None
    if spec.paused or status.paused_by is not None:
        return None  # asked again once resumed
    missing = tuple(h for h in spec.notifications.confirm if h.name not in stage.confirmed)
    return ConfirmRequest(candidate, stage.index, missing) if missing else None


class Confirming(Bookkeeping):
    """The planner's part: a stage starts once every confirm webhook has answered 2xx for it."""

    def confirmed(self, candidate: str) -> bool:
        """Whether the current stage may start; if not, it waits (the caller holds the route)."""
        hooks = self.spec.notifications.confirm
        stage = self.st.stage
        assert stage is not None
        if not hooks or stage.waived:  # promote --full: the person is the confirmation
            return True
        answers = self.confirmations
        said = {}  # the answers about this stage of this candidate only
        if answers is not None and (answers.candidate, answers.stage) == (candidate, stage.index):
            said = answers.answers
        for name, answer in said.items():
            if answer.ok and name not in stage.confirmed:
                stage.confirmed.append(name)
        missing = [h for h in hooks if h.name not in stage.confirmed]
        if not missing:
            stage.confirm_waiting_since = None
            return True
        waiting = ", ".join(
            f"{h.name} ({said[h.name].message})" if h.name in said else h.name for h in missing
        )
        message = f"stage {stage.name} waits for its confirm webhooks to answer 2xx: {waiting}"
        stage.confirm_waiting_since = stage.confirm_waiting_since or self.now
        refused = any(not answer.ok for answer in said.values())
        if refused and not stage.confirm_refused:  # told once a stage is refused, not asked
            stage.confirm_refused = True
            self.event("AwaitingConfirmation", message, warning=True)
        if stage.index == 0:  # no traffic yet: the rollout is Pending (not still Promoted)
            self.set_phase("Pending", message)
        else:  # traffic stays at the previous stage's split, and so does the phase
            self.st.message = message
        self.requeue(min(parse_duration(h.retry).total_seconds() for h in missing))
        return False
