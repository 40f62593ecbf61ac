"""The planner's working state and bookkeeping: its inputs, the Decision being written, and the
status writes every state of the state machine shares (phase, events, commands consumed,
history, retired revisions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ftrelease.api.bundle import Bundle
from ftrelease.api.durations import parse_duration
from ftrelease.api.revision import revision_of
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus, HistoryEntry, RetiredRevision
from ftrelease.api.verdict import StageVerdict

from .commands import Command, parse
from .types import Confirmations, Decision, Event, Observed

# Entries kept in status.history, each with its whole bundle (a bundle is a few KiB at most: a
# prompt and an output schema), so the status stays far below the apiserver's object limit.
HISTORY_LIMIT = 10


def bundle_summary(bundle: Bundle) -> dict[str, str]:
    """One short line per bundle part, for history and Events."""
    return {
        "baseModel": f"{bundle.base_model.name}@{bundle.base_model.revision[:12]}",
        "artifact": f"{bundle.artifact.type} {bundle.artifact.digest[:19]}",
        "dataset": f"{bundle.dataset.name}@{bundle.dataset.version}",
        "evals": f"{bundle.evals.suite}/{bundle.evals.version}",
        "modelName": bundle.routing.model_name,
    }


@dataclass
class Bookkeeping:
    """The planner's inputs, the Decision it writes, and the helpers every state shares."""

    name: str
    spec: FineTuneReleaseSpec
    observed: Observed
    annotations: dict[str, str]  # the commands set (finetune.dev/*), as the annotations say
    now: datetime
    verdict: StageVerdict
    decision: Decision
    bundle_set_by: str | None = None  # the field manager that last wrote spec.bundle
    confirmations: Confirmations | None = None  # the confirm webhooks' answers, if asked
    revision: str = field(init=False)
    commands: dict[str, Command] = field(init=False)
    acted: set[str] = field(init=False, default_factory=set)  # commands acted on

    def __post_init__(self) -> None:
        self.revision = revision_of(self.spec.bundle)
        self.commands = {k: parse(k, v) for k, v in self.annotations.items()}

    # ---- helpers ------------------------------------------------------------------------------

    @property
    def st(self) -> FineTuneReleaseStatus:
        return self.decision.status

    @property
    def paused(self) -> bool:
        """Held by the manifest (spec.paused) or by a person (kubectl finetune pause)."""
        return self.spec.paused or self.st.paused_by is not None

    def paused_message(self, where: str) -> str:
        held = self.st.paused_by
        if held is not None:
            why = f": {held.reason}" if held.reason else ""
            return f"paused {where} by {held.by}{why}; kubectl finetune resume {self.name} to go on"
        return f"paused {where}; set spec.paused=false to go on"

    @property
    def full(self) -> int:
        return self.spec.serving.replicas

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.decision.events.append(Event("Warning" if warning else "Normal", reason, message))

    def set_phase(self, phase: str, message: str) -> None:
        self.st.phase = phase  # type: ignore[assignment]
        self.st.message = message

    def requeue(self, seconds: float) -> None:
        self.decision.requeue(seconds)

    def consume(self, command: str) -> Command | None:
        found = self.commands.get(command)
        if found is not None and command not in self.decision.consumed_commands:
            self.decision.consumed_commands.append(command)
        return found

    def act(self, command: Command, reason: str, what: str, warning: bool = False) -> None:
        """The one Event a command leaves: what was done, who asked, why they said."""
        self.acted.add(command.annotation)
        self.event(reason, f"{what} {command.said}", warning)

    def history(
        self,
        revision: str,
        outcome: str,
        reason: str,
        started: datetime | None,
        *,
        ended_by: str,
        started_by: str | None = None,
    ) -> None:
        bundle = self.bundle_of(revision)
        entry = HistoryEntry(
            revision=revision,
            bundle=bundle.to_wire() if bundle else {},
            outcome=outcome,
            reason=reason,
            started_at=started,
            finished_at=self.now,
            started_by=started_by or self.st.started_by,
            ended_by=ended_by,
        )
        self.st.history = [entry, *self.st.history][:HISTORY_LIMIT]

    def retire(self, revision: str | None, delay: str, role: str = "candidate") -> None:
        if not revision:
            return
        seconds = int(parse_duration(delay).total_seconds())
        entry = RetiredRevision(
            revision=revision, since=self.now, scale_down_after_seconds=seconds, role=role
        )
        self.st.retired = [entry, *(r for r in self.st.retired if r.revision != revision)]

    def bundle_of(self, revision: str) -> Bundle | None:
        if revision == self.revision:
            return self.spec.bundle
        if revision == self.st.stable_revision and self.st.stable_bundle:
            return Bundle.model_validate(self.st.stable_bundle)
        found = self.observed.revisions.get(revision)
        return found.bundle if found else None

    def retained(self) -> set[str]:
        return {r.revision for r in self.st.retired if r.revision in self.observed.revisions}

    def clear_candidate(self) -> None:
        self.st.candidate_revision = None
        self.st.candidate_since = None
        self.st.started_by = None
        self.st.moved_on_by = None
        self.st.stage = None
