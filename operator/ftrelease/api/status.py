"""The status of a FineTuneRelease, written by the operator only: phase, stage, analysis results,
conditions, history and retired revisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Phase = Literal[
    "Pending", "Gated", "Shadow", "Progressing", "Paused", "Promoted", "RolledBack", "Failed"
]
Outcome = Literal["Pass", "Fail", "NoData", "Error", "Inconclusive"]


class StatusModel(BaseModel):
    """Status is written by the operator only; older or newer fields are ignored, not errors."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StageStatus(StatusModel):
    index: int
    name: str
    weight: int = 0
    mirror: int = 0
    effective_weight: int | None = Field(
        default=None,
        description=(
            "Where the split follows replica counts (the replicas provider): the candidate's "
            "share as the pods give it, its ready pods over all ready pods, in percent."
        ),
    )
    started_at: datetime | None = Field(
        default=None, description="When the stage's route was observed in place; its clock."
    )
    approved: bool = Field(default=False, description="Manual approval given for this stage.")
    hold: str | None = Field(
        default=None,
        description="Why the operator paused this stage for a person (Inconclusive, onError).",
    )
    inconclusive: bool = Field(
        default=False, description="Held because the stage ran out of time without a Pass."
    )
    pods_waiting_since: datetime | None = Field(
        default=None,
        description=(
            "Since when the candidate lacks the ready pods this stage needs, or the gateway has "
            "not taken the stage's route (the progress deadline's clock)."
        ),
    )
    confirmed: list[str] = Field(
        default_factory=list,
        description="The confirm webhooks that answered 2xx for this stage (before it starts).",
    )
    confirm_waiting_since: datetime | None = Field(
        default=None, description="Since when the stage waits for its confirm webhooks."
    )
    confirm_refused: bool = Field(
        default=False, description="A confirm webhook refused this stage (it waits for 2xx)."
    )
    waived: bool = Field(
        default=False,
        description="kubectl finetune promote --full: promote once the route is in place.",
    )
    deadline_exceeded: bool = Field(
        default=False,
        description="Held because the candidate missed strategy.progressDeadline.",
    )
    waiting_since: datetime | None = Field(
        default=None,
        description=(
            "Where the maxDuration clock starts: the stage's start, moved on by a resume and by "
            "the length of each analysis outage (time without metrics is not waiting for a Pass)."
        ),
    )
    # The analysis clock: counts are measured over [analyzedUntil, now), never twice.
    analyzed_until: datetime | None = None
    next_analysis_at: datetime | None = None
    error_since: datetime | None = Field(
        default=None, description="Analysis has been failing (Error) since then."
    )
    errors: int = Field(default=0, description="Failed analysis attempts in a row (backoff).")


class MetricResult(StatusModel):
    metric: str
    outcome: Outcome
    value: float | None = None
    stable_value: float | None = None
    evidence: float | None = Field(default=None, description="The e-value (sequential judge).")
    samples: int | None = Field(default=None, description="Candidate requests, whole rollout.")
    stage_samples: int | None = Field(default=None, description="Candidate requests, this stage.")
    message: str | None = None
    # The sequential judge's state, carried across the stages of one candidate.
    log_evidence: float | None = None
    evidence_components: list[float] | None = Field(
        default=None, description="log e-value of each component of the mixture (judges.py)."
    )
    candidate_bad: float | None = None
    stable_bad: float | None = None
    candidate_total: float | None = None
    stable_total: float | None = None


class Condition(StatusModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class HistoryEntry(StatusModel):
    """One rollout of one revision, newest first in status.history."""

    revision: str
    bundle: dict[str, Any] = Field(
        default_factory=dict,
        description="The revision's whole bundle, as applied (kubectl finetune history, diff).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    outcome: str
    reason: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    started_by: str | None = Field(
        default=None,
        description="Who set the bundle (the field manager that wrote spec.bundle) or the command.",
    )
    ended_by: str | None = Field(
        default=None, description="What ended it: analysis, the stages, or a person's command."
    )


class RetiredRevision(StatusModel):
    """A revision that no longer serves: it keeps its pods for `scaleDownAfterSeconds`; then a
    previous stable keeps strategy.keepPreviousStable's pods for its time, and anything else
    none, until it falls out of `revisionHistoryLimit` and its objects are deleted."""

    revision: str
    since: datetime
    scale_down_after_seconds: int = 0
    role: Literal["stable", "candidate"] = Field(
        default="candidate",
        description=(
            "stable: it served all traffic until then (a previous stable, kept warm by "
            "strategy.keepPreviousStable, the default target of kubectl finetune rollback)."
        ),
    )


class PauseRequest(StatusModel):
    """kubectl finetune pause: held in status, not in the spec, so a GitOps sync of the
    manifest does not undo it. `kubectl finetune resume` clears it."""

    by: str
    reason: str = ""
    at: datetime


class RollbackRequest(StatusModel):
    """kubectl finetune rollback, under way: traffic moves once the target has its pods."""

    revision: str = Field(description="The revision all traffic goes to.")
    by: str
    reason: str = ""
    requested_at: datetime
    spec_revision: str = Field(description="The spec's revision when asked; held afterwards.")
    pods_needed: int = Field(
        description=(
            "Ready pods the target needs before traffic moves: as many as it was kept warm "
            "with (keepPreviousStable), or serving.replicas for a target that was cold."
        )
    )


class EvalResult(StatusModel):
    """One run of an eval suite against one revision: the Job, then its scores."""

    revision: str = Field(description="The revision measured.")
    suite: str
    version: str
    state: Literal["Running", "Succeeded", "Failed"]
    job: str = Field(description="The Job (kubectl logs job/<job>).")
    attempt: int = Field(default=1, description="Starts again at a retry.")
    scores: dict[str, float] = Field(default_factory=dict)
    cases: int | None = Field(default=None, description="How many cases the suite ran.")
    cases_digest: str | None = Field(default=None, description="sha256 of the cases file.")
    message: str = Field(default="", description="Why it failed, or what it measured.")
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ScoreCheck(StatusModel):
    score: str
    rule: str = Field(description="minScores, maxScores, maxRegression, maxIncrease, comparable.")
    limit: float
    candidate: float | None = None
    stable: float | None = None
    passed: bool


class GateStatus(StatusModel):
    """The eval gate's verdict on the current (or last gated) candidate."""

    revision: str
    source: Literal["measured", "declared"]
    suite: str
    version: str
    stable_revision: str | None = None
    attempt: int = Field(default=1, description="Each retry measures again.")
    passed: bool | None = Field(default=None, description="None while its evals run.")
    comparable: bool | None = Field(
        default=None,
        description="Whether the stable's scores came from the same suite and version (None: no "
        "comparison asked for).",
    )
    reason: str = ""
    checks: list[ScoreCheck] = Field(default_factory=list)
    mismatches: list[str] = Field(
        default_factory=list,
        description="Declared scores the measurement contradicts (beyond gate.evals.tolerance).",
    )


# ---- the notifications' outbox -------------------------------------------------------------


class Notice(StatusModel):
    """One transition to tell, as it stood when it happened."""

    sequence: int
    time: datetime
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    phase: str | None = None
    stage: str | None = None
    weight: int | None = None
    mirror: int | None = None
    candidate_revision: str | None = None
    stable_revision: str | None = None


class WebhookState(StatusModel):
    delivered: int = Field(default=0, description="The last sequence number it acknowledged.")
    error: str | None = Field(default=None, description="Why the last attempt failed.")
    failing_since: datetime | None = None


class NotificationStatus(StatusModel):
    sequence: int = Field(default=0, description="The last sequence number given.")
    pending: list[Notice] = Field(
        default_factory=list,
        description="Not yet acknowledged by every webhook, oldest first (at most 100).",
    )
    webhooks: dict[str, WebhookState] = Field(
        default_factory=dict, description="Delivery to each webhook, written by the notifier."
    )
    dropped: int = Field(
        default=0, description="Notifications dropped unsent: the outbox was full."
    )


class FineTuneReleaseStatus(StatusModel):
    observed_generation: int | None = None
    phase: Phase | None = None
    message: str | None = None
    stable_revision: str | None = None
    stable_bundle: dict[str, Any] | None = Field(
        default=None,
        description="The stable revision's bundle (its evals and routing are compared against).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    candidate_revision: str | None = None
    paused_by: PauseRequest | None = Field(
        default=None,
        description="A pause by command (kubectl finetune pause): rollouts hold until resumed.",
    )
    rolling_back_to: RollbackRequest | None = Field(
        default=None, description="A rollback by command that waits for its target's pods."
    )
    started_by: str | None = Field(
        default=None, description="Who started the current candidate's rollout."
    )
    moved_on_by: str | None = Field(
        default=None,
        description="Who moved the candidate on by command (kubectl finetune promote), and how.",
    )
    candidate_since: datetime | None = Field(
        default=None, description="When the current candidate's rollout began."
    )
    stage: StageStatus | None = None
    analysis: list[MetricResult] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    retired: list[RetiredRevision] = Field(default_factory=list)
    gate: GateStatus | None = None
    notifications: NotificationStatus | None = Field(
        default=None, description="The outbox of spec.notifications.webhooks."
    )
    evals: list[EvalResult] = Field(
        default_factory=list,
        description="Eval runs in the cluster, newest first: each revision's measured scores.",
    )
