"""A release and a tiny in-memory cluster for the cycle to run against: Deployments become ready
as soon as they are scaled (unless told otherwise) and the route is whatever was written last.
`kubectl finetune simulate` and the unit tests drive whole rollouts with it; the operator runs
the same cycle against the apiserver."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ftrelease.analysis.evaluate import Measure
from ftrelease.api.bundle import Bundle
from ftrelease.api.revision import revision_of
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus

from . import cycle
from .confirm import wanted as wanted_confirmations
from .types import (
    Answer,
    Confirmations,
    Decision,
    EvalJobPlan,
    Observed,
    ObservedJob,
    ObservedRevision,
    Route,
)

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


@dataclass
class World:
    spec: FineTuneReleaseSpec
    now: datetime = T0
    status: FineTuneReleaseStatus = field(default_factory=FineTuneReleaseStatus)
    replicas: dict[str, int] = field(default_factory=dict)
    bundles: dict[str, Bundle] = field(default_factory=dict)
    route: Route | None = None
    unready: set[str] = field(default_factory=set)  # revisions whose pods never get ready
    why_unready: str | None = None  # what their pods say (operator/pods.py)
    route_problem: str | None = None  # what the gateway says of the route, if it refuses it
    route_writes: int = 0
    # Eval Jobs as created (rollout.evaluation); `evaluator`, if set, ends each one as it is
    # created: (state, message) for its plan. Unset, they run until a test ends them.
    jobs: dict[str, ObservedJob] = field(default_factory=dict)
    evaluator: Callable[[EvalJobPlan], tuple[str, str]] | None = None
    decisions: list[Decision] = field(default_factory=list)
    # The confirm webhooks (spec.notifications.confirm): each one's answer about a stage.
    confirm: Callable[[str, int], Answer] | None = None
    name: str = "support-bot"
    namespace: str = "ml"

    @property
    def revision(self) -> str:
        return revision_of(self.spec.bundle)

    def observe(self) -> Observed:
        return Observed(
            revisions={
                rev: ObservedRevision(
                    revision=rev,
                    replicas=count,
                    ready_replicas=0 if rev in self.unready else count,
                    available=rev not in self.unready,
                    bundle=self.bundles.get(rev),
                    unavailable=self.why_unready if rev in self.unready else None,
                )
                for rev, count in self.replicas.items()
            },
            route=self.route,
            route_problem=self.route_problem,
            eval_jobs=dict(self.jobs),
        )

    def step(
        self, *, commands: dict[str, str] | None = None, measure: Measure | None = None
    ) -> Decision:
        """One reconcile: the cycle (measuring with `measure`; None: no analysis), then its
        Decision applied to this world."""
        release = cycle.Release(
            self.name, self.namespace, self.spec, self.status, None, commands or {}
        )
        observed = self.observe()
        decision = cycle.run(release, observed, self.now, measure, self.confirmations())
        self.apply(decision, observed)
        return decision

    def confirmations(self) -> Confirmations | None:
        request = wanted_confirmations(self.spec, self.status)
        if request is None or self.confirm is None:
            return None
        answers = {h.name: self.confirm(h.name, request.stage) for h in request.hooks}
        return Confirmations(request.candidate, request.stage, answers)

    def apply(self, decision: Decision, observed: Observed) -> None:
        self.decisions.append(decision)
        for revision in decision.delete:
            self.replicas.pop(revision, None)
            self.bundles.pop(revision, None)
        for p in decision.revisions:
            self.replicas[p.revision] = p.replicas
            if p.bundle is not None:
                self.bundles[p.revision] = p.bundle
        for plan in decision.eval_jobs:
            if plan.name not in self.jobs:
                self.jobs[plan.name] = ObservedJob(plan.name, "Running", started_at=self.now)
                if self.evaluator is not None:
                    self.end_job(plan.name, *self.evaluator(plan))
        if decision.wants_route_write(observed):
            self.route = decision.route
            self.route_writes += 1
        self.status = decision.status

    def end_job(self, name: str, state: str, message: str) -> None:
        self.jobs[name] = ObservedJob(
            name,
            state,
            message,
            self.jobs[name].started_at,
            self.now,  # type: ignore[arg-type]
        )

    def settle(self, steps: int = 6, measure: Measure | None = None) -> Decision:
        """A few reconciles at the same instant (objects ready, route observed)."""
        for _ in range(steps):
            decision = self.step(measure=measure)
        return decision

    def advance(self, seconds: float, measure: Measure | None = None) -> Decision:
        self.now += timedelta(seconds=seconds)
        return self.settle(measure=measure)
