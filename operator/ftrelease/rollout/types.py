"""What the planner reads (observed state, commands) and what it returns (a Decision)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ftrelease.api.bundle import Bundle
from ftrelease.api.route import Route
from ftrelease.api.status import FineTuneReleaseStatus, MetricResult, StageStatus
from ftrelease.api.verdict import Event

# The phases of a rollout under way (a candidate is being brought in).
IN_PROGRESS = ("Pending", "Shadow", "Progressing", "Paused")


@dataclass(frozen=True)
class ObservedRevision:
    revision: str
    replicas: int  # what the Deployment asks for
    ready_replicas: int
    available: bool  # the Deployment's Available condition, for its current generation
    bundle: Bundle | None = None  # read back from the revision's ConfigMap
    applied: str | None = None  # digest of the objects last applied (serving.objects)
    unavailable: str | None = None  # why its pods are not available (operator/pods.py), if known


@dataclass(frozen=True)
class ObservedJob:
    """An eval Job (serving.evaljob) as the cluster has it."""

    name: str
    state: Literal["Running", "Succeeded", "Failed"]
    # Succeeded: the evaluator's result (its termination message); Failed: why, as the Job and
    # its pod say. None: not read (yet).
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    waiting: str | None = None  # Running: why its pod is not running yet, if it says (a mount)


@dataclass(frozen=True)
class Observed:
    revisions: dict[str, ObservedRevision] = field(default_factory=dict)
    eval_jobs: dict[str, ObservedJob] = field(default_factory=dict)  # by name
    route: Route | None = None  # None: no route object yet
    route_problem: str | None = None  # why the provider does not carry the route out, if it says

    def ready(self, revision: str, replicas: int) -> bool:
        found = self.revisions.get(revision)
        return bool(found and found.available and found.ready_replicas >= replicas)

    def ready_pods(self, revision: str) -> int:
        found = self.revisions.get(revision)
        return found.ready_replicas if found else 0

    def ready_share(self, candidate: str, stable: str) -> int:
        """The candidate's ready pods over both revisions' ready pods, in percent."""
        ready = {
            r: found.ready_replicas if (found := self.revisions.get(r)) else 0
            for r in (candidate, stable)
        }
        total = sum(ready.values())
        return round(100 * ready[candidate] / total) if total else 0


@dataclass(frozen=True)
class Answer:
    ok: bool  # answered 2xx
    message: str  # what it answered: "HTTP 403: change freeze", "connection refused"


@dataclass(frozen=True)
class Confirmations:
    """The confirm webhooks' latest answers about one stage of one candidate
    (spec.notifications.confirm), by webhook name."""

    candidate: str
    stage: int
    answers: dict[str, Answer] = field(default_factory=dict)


@dataclass(frozen=True)
class RevisionPlan:
    """A revision the operator keeps. With a bundle, its objects are (re)applied in full;
    without one (a retired revision), only its replica count is set."""

    revision: str
    replicas: int
    role: Literal["stable", "candidate", "retired"]
    bundle: Bundle | None = None


@dataclass(frozen=True)
class EvalJobPlan:
    """An eval Job to create: the candidate's suite run against revision `target`."""

    name: str
    candidate: str
    target: str
    attempt: int
    bundle: Bundle  # the candidate's


@dataclass(frozen=True)
class IncidentPlan:
    """A candidate rolled back by analysis: what its incident record keeps (with the
    candidate's sampled outputs, which the operator reads from its pods)."""

    revision: str
    stable: str
    reason: str
    bundle: Bundle | None
    analysis: list[MetricResult]
    stage: StageStatus | None
    at: datetime


@dataclass
class Decision:
    status: FineTuneReleaseStatus
    revisions: list[RevisionPlan] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # revisions whose objects go
    route: Route | None = None  # None: leave the route as it is
    eval_jobs: list[EvalJobPlan] = field(default_factory=list)  # to create, if not there
    events: list[Event] = field(default_factory=list)
    consumed_commands: list[str] = field(default_factory=list)
    incident: IncidentPlan | None = None  # a rollback by analysis to keep a record of
    requeue_after: float | None = None  # seconds until a clock runs out

    def requeue(self, seconds: float) -> None:
        """Asks to be run again within `seconds` (the soonest of every clock wins)."""
        seconds = max(seconds, 0.5)
        current = self.requeue_after
        self.requeue_after = seconds if current is None else min(current, seconds)

    def wants_route_write(self, observed: Observed) -> bool:
        return self.route is not None and self.route != observed.route
