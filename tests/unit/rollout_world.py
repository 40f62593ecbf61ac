"""A tiny in-memory stand-in for the cluster, to drive the pure planner through whole rollouts in
unit tests: Deployments become ready as soon as they are scaled (unless a test says otherwise)
and the route is whatever was written last. The e2e tests run the same planner on the real
control plane."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ftrelease.analysis.step import Measure, analyze
from ftrelease.api.models import Bundle, FineTuneRelease, FineTuneReleaseSpec, FineTuneReleaseStatus
from ftrelease.api.revision import revision_of
from ftrelease.rollout.planner import NO_ANALYSIS, StageVerdict, plan
from ftrelease.rollout.types import Decision, Observed, ObservedRevision, Route

from tests.api_cases import load_example

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def spec_with(**changes: Any) -> FineTuneReleaseSpec:
    """The support-bot example with short stages and the given spec changes (dotted keys)."""
    doc = load_example()
    doc["spec"]["strategy"]["stages"] = [
        {"name": "shadow", "mirror": 100, "duration": "1m"},
        {"name": "canary-1", "weight": 1, "duration": "1m"},
        {"name": "canary-10", "weight": 10, "duration": "1m"},
        {"name": "full", "weight": 100, "duration": "1m"},
    ]
    for dotted, value in changes.items():
        target = doc["spec"]
        *parents, leaf = dotted.split(".")
        for part in parents:
            target = target[part]
        target[leaf] = value
    return FineTuneRelease.model_validate(doc).spec


def with_bundle_version(spec: FineTuneReleaseSpec, version: str) -> FineTuneReleaseSpec:
    """The same spec with another dataset version: a new revision."""
    changed = copy.deepcopy(spec)
    changed.bundle.dataset.version = version
    return FineTuneReleaseSpec.model_validate(changed.to_wire())


@dataclass
class World:
    spec: FineTuneReleaseSpec
    now: datetime = T0
    status: FineTuneReleaseStatus = field(default_factory=FineTuneReleaseStatus)
    replicas: dict[str, int] = field(default_factory=dict)
    bundles: dict[str, Bundle] = field(default_factory=dict)
    route: Route | None = None
    unready: set[str] = field(default_factory=set)  # revisions whose pods never get ready
    route_writes: int = 0
    decisions: list[Decision] = field(default_factory=list)

    def observed(self) -> Observed:
        return Observed(
            revisions={
                rev: ObservedRevision(
                    revision=rev,
                    replicas=count,
                    ready_replicas=0 if rev in self.unready else count,
                    available=rev not in self.unready,
                    bundle=self.bundles.get(rev),
                )
                for rev, count in self.replicas.items()
            },
            route=self.route,
        )

    def step(
        self, *, commands: dict[str, str] | None = None, verdict: StageVerdict = NO_ANALYSIS
    ) -> Decision:
        observed = self.observed()
        decision = plan(
            "support-bot",
            self.spec,
            self.status,
            observed,
            now=self.now,
            commands=commands,
            verdict=verdict,
        )
        self.decisions.append(decision)
        for revision in decision.delete:
            self.replicas.pop(revision, None)
            self.bundles.pop(revision, None)
        for p in decision.revisions:
            self.replicas[p.revision] = p.replicas
            if p.bundle is not None:
                self.bundles[p.revision] = p.bundle
        if decision.wants_route_write(observed):
            self.route = decision.route
            self.route_writes += 1
        self.status = decision.status
        return decision

    def analysed_step(self, measure: Measure, commands: dict[str, str] | None = None) -> Decision:
        """One reconcile as the operator with Prometheus does it: analysis, then the plan."""
        step = analyze("support-bot", "ml", self.spec, self.status, measure, self.now)
        self.status = step.status
        decision = self.step(commands=commands, verdict=step.verdict)
        decision.events[:0] = step.events
        return decision

    def settle(self, steps: int = 6) -> Decision:
        """A few reconciles at the same instant (objects ready, route observed)."""
        for _ in range(steps):
            decision = self.step()
        return decision

    def advance(self, seconds: float) -> Decision:
        self.now += timedelta(seconds=seconds)
        return self.settle()

    @property
    def revision(self) -> str:
        return revision_of(self.spec.bundle)
