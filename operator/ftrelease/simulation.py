"""Synthetic rollouts: a release's stages and analysis run against simulated traffic, through
the same planner (rollout.planner) and judges (analysis.evaluate) the operator uses. Platform
teams use it to see, before shipping an analysis, how often it would roll back a healthy model
and how many bad requests a regression would serve first.

Per analysis interval: requests arrive as Poisson(rps x interval); the route of the moment
splits them (a mirror copies requests to the candidate without serving its answers); each
request of the revision under test is bad with its rate. A scrape gap (probability
`scrape_gap`) loses an interval's measurement (the Error outcome). Objects are ready at once.
The first rate metric carries the simulated rates; other rate metrics see none; metrics on
custom queries cannot be simulated and are taken as passing."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from ftrelease.analysis.evaluate import Measurement, evaluate
from ftrelease.analysis.judges import Counts
from ftrelease.api.durations import parse_duration
from ftrelease.api.models import FineTuneReleaseSpec, FineTuneReleaseStatus, MetricResult
from ftrelease.api.revision import revision_of
from ftrelease.api.verdict import StageVerdict
from ftrelease.rollout.planner import plan
from ftrelease.rollout.types import Observed, ObservedRevision, Route

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scenario:
    rps: float = 100.0
    baseline_rate: float = 0.005  # stable's bad rate
    regression: float = 1.0  # candidate rate = baseline x regression (+ added_rate)
    added_rate: float = 0.0
    scrape_gap: float = 0.0

    @property
    def candidate_rate(self) -> float:
        return min(1.0, self.baseline_rate * self.regression + self.added_rate)


@dataclass
class RunResult:
    outcome: str  # promoted | rolled-back | undecided
    bad_served: int  # the candidate's bad answers that reached users before the decision
    seconds: float  # to the decision


@dataclass
class Report:
    scenario: Scenario
    runs: list[RunResult] = field(default_factory=list)

    def rate(self, outcome: str) -> float:
        return sum(r.outcome == outcome for r in self.runs) / len(self.runs)

    def summary(self) -> dict[str, float]:
        bad = sorted(r.bad_served for r in self.runs)
        decided = [r.seconds for r in self.runs if r.outcome != "undecided"]
        return {
            "runs": len(self.runs),
            "rollback_rate": self.rate("rolled-back"),
            "promotion_rate": self.rate("promoted"),
            "undecided_rate": self.rate("undecided"),
            "bad_served_mean": statistics.fmean(bad),
            "bad_served_p95": float(bad[min(len(bad) - 1, int(0.95 * len(bad)))]),
            "seconds_to_decision_mean": statistics.fmean(decided) if decided else float("nan"),
        }


def _stable_spec(spec: FineTuneReleaseSpec) -> FineTuneReleaseSpec:
    wire = spec.to_wire()
    wire["bundle"]["dataset"]["version"] = f"{wire['bundle']['dataset']['version']}-stable"
    return FineTuneReleaseSpec.model_validate(wire)


def simulate_run(
    spec: FineTuneReleaseSpec,
    scenario: Scenario,
    rng: np.random.Generator,
    max_seconds: float | None = None,
) -> RunResult:
    stable_spec = _stable_spec(spec)
    stable, candidate = revision_of(stable_spec.bundle), revision_of(spec.bundle)
    analysis = spec.strategy.analysis
    step = parse_duration(analysis.interval).total_seconds()
    if max_seconds is None:
        total = sum(parse_duration(s.duration).total_seconds() for s in spec.stages if s.duration)
        max_seconds = 3 * total + 3600
    rate_metric = next(
        (m.name for m in analysis.metrics if m.effective_judge == "sequential"), None
    )
    status = FineTuneReleaseStatus(
        stable_revision=stable, stable_bundle=stable_spec.bundle.to_wire(), phase="Promoted"
    )
    route: Route | None = Route.only(stable)
    replicas = {stable: spec.serving.replicas}
    results: list[MetricResult] = []
    verdict = StageVerdict(passed=False, reason="no analysis yet")
    bad_served, now = 0, START
    while (now - START).total_seconds() <= max_seconds:
        for _ in range(4):  # settle: objects ready and routes in place at once
            observed = Observed(
                revisions={r: ObservedRevision(r, n, n, True) for r, n in replicas.items()},
                route=route,
            )
            decision = plan("sim", spec, status, observed, now=now, verdict=verdict)
            status = decision.status
            replicas = {p.revision: p.replicas for p in decision.revisions if p.replicas}
            route = decision.route or route
        elapsed = (now - START).total_seconds()
        if status.stable_revision == candidate:
            return RunResult("promoted", bad_served, elapsed)
        if status.phase == "RolledBack":
            return RunResult("rolled-back", bad_served, elapsed)
        # One interval of traffic on the route now in place.
        arrivals = rng.poisson(scenario.rps * step)
        live = rng.binomial(arrivals, route.weight_of(candidate) / 100) if route else 0
        mirrored = (
            rng.binomial(arrivals, route.mirror_percent / 100)
            if route and route.mirror_to == candidate
            else 0
        )
        n_candidate, n_stable = live + mirrored, arrivals - live
        x_live = rng.binomial(live, scenario.candidate_rate)
        x = x_live + rng.binomial(mirrored, scenario.candidate_rate)
        y = rng.binomial(n_stable, scenario.baseline_rate)
        bad_served += int(x_live)
        measurements = {}
        for metric in analysis.metrics:
            if rng.random() < scenario.scrape_gap:
                measurements[metric.name] = Measurement(
                    error="scrape gap: no data for the interval"
                )
            elif metric.effective_judge != "sequential":
                measurements[metric.name] = Measurement(candidate_value=0.0, stable_value=0.0)
            elif metric.name == rate_metric:
                measurements[metric.name] = Measurement(Counts(x, n_candidate), Counts(y, n_stable))
            else:
                measurements[metric.name] = Measurement(Counts(0, n_candidate), Counts(0, n_stable))
        if status.candidate_revision == candidate and status.stage is not None:
            results, verdict = evaluate(analysis, measurements, results)
            status = status.model_copy(update={"analysis": results})
        now += timedelta(seconds=step)
    return RunResult("undecided", bad_served, max_seconds)


def simulate(spec: FineTuneReleaseSpec, scenario: Scenario, runs: int, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    return Report(scenario, [simulate_run(spec, scenario, rng) for _ in range(runs)])
