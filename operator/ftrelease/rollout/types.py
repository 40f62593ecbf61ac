"""What the planner reads (observed state, commands) and what it returns (a Decision)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ftrelease.api.models import Bundle, FineTuneReleaseStatus

# Commands are annotations on the FineTuneRelease, set by `kubectl finetune abort|approve|retry`.
COMMAND_PREFIX = "finetune.dev/"
ABORT = COMMAND_PREFIX + "abort"
APPROVE = COMMAND_PREFIX + "approve"
RETRY = COMMAND_PREFIX + "retry"
COMMANDS = (ABORT, APPROVE, RETRY)


@dataclass(frozen=True)
class Route:
    """Where live traffic goes: percent per revision (summing to 100), and an optional mirror of
    requests to one revision. `None` weights for a revision means it is not a backend at all."""

    weights: tuple[tuple[str, int], ...]
    mirror_to: str | None = None
    mirror_percent: int = 0

    @staticmethod
    def only(revision: str) -> Route:
        return Route(weights=((revision, 100),))

    @staticmethod
    def split(stable: str, candidate: str, weight: int, mirror: int = 0) -> Route:
        return Route(
            weights=((stable, 100 - weight), (candidate, weight)),
            mirror_to=candidate if mirror else None,
            mirror_percent=mirror,
        )

    def weight_of(self, revision: str) -> int:
        return dict(self.weights).get(revision, 0)

    @property
    def revisions(self) -> set[str]:
        found = {r for r, _ in self.weights}
        return found | ({self.mirror_to} if self.mirror_to else set())


@dataclass(frozen=True)
class ObservedRevision:
    revision: str
    replicas: int  # what the Deployment asks for
    ready_replicas: int
    available: bool  # the Deployment's Available condition, for its current generation
    bundle: Bundle | None = None  # read back from the revision's ConfigMap


@dataclass(frozen=True)
class Observed:
    revisions: dict[str, ObservedRevision] = field(default_factory=dict)
    route: Route | None = None  # None: no route object yet

    def ready(self, revision: str, replicas: int) -> bool:
        found = self.revisions.get(revision)
        return bool(found and found.available and found.ready_replicas >= replicas)


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class RevisionPlan:
    """A revision the operator keeps. With a bundle, its objects are (re)applied in full;
    without one (a retired revision), only its replica count is set."""

    revision: str
    replicas: int
    role: Literal["stable", "candidate", "retired"]
    bundle: Bundle | None = None


@dataclass
class Decision:
    status: FineTuneReleaseStatus
    revisions: list[RevisionPlan] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # revisions whose objects go
    route: Route | None = None  # None: leave the route as it is
    events: list[Event] = field(default_factory=list)
    consumed_commands: list[str] = field(default_factory=list)
    requeue_after: float | None = None  # seconds until a clock runs out

    def wants_route_write(self, observed: Observed) -> bool:
        return self.route is not None and self.route != observed.route

    def summary(self) -> dict[str, Any]:
        return {
            "phase": self.status.phase,
            "route": self.route,
            "revisions": [(p.revision, p.role, p.replicas) for p in self.revisions],
            "delete": self.delete,
        }
