"""Synthetic rollouts: a release's stages and analysis run against simulated traffic, through
the same planner (rollout.planner) and analysis clock and judges (analysis.step) the operator
uses. Platform teams use it to see, before shipping an analysis, how often it would roll back a
healthy model and how many bad requests a regression would serve first.

Per analysis interval: requests arrive as Poisson(rps x interval); the route of the moment
splits them (a mirror copies requests to the candidate without serving its answers); each
request of the revision under test is bad with its rate. Prometheus sees counts as of its last
scrape (`scrape_interval`), so the newest requests are counted in the next window; a failed
measurement (probability `scrape_gap`: Prometheus unreachable) is the Error outcome, and its
window is measured again later. Objects are ready at once; the operator reconciles once per
interval. The first rate metric carries the simulated rates; other rate metrics see none;
metrics on custom queries cannot be simulated and are taken as passing."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from ftrelease.analysis.evaluate import Measurement
from ftrelease.analysis.judges import Counts
from ftrelease.analysis.step import analyze
from ftrelease.api.durations import parse_duration
from ftrelease.api.models import FineTuneReleaseSpec, FineTuneReleaseStatus, Metric
from ftrelease.api.revision import revision_of
from ftrelease.rollout.planner import plan
from ftrelease.rollout.types import Observed, ObservedRevision, Route

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scenario:
    rps: float = 100.0
    baseline_rate: float = 0.005  # stable's bad rate
    regression: float = 1.0  # candidate rate = baseline x regression (+ added_rate)
    added_rate: float = 0.0
    scrape_gap: float = 0.0  # probability that a measurement fails (Error)
    scrape_interval: float = 15.0  # seconds; Prometheus sees counts as of its last scrape

    @property
    def candidate_rate(self) -> float:
        return min(1.0, self.baseline_rate * self.regression + self.added_rate)


@dataclass
class RunResult:
    outcome: str  # promoted | rolled-back | paused (Inconclusive or onError) | undecided
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
            "paused_rate": self.rate("paused"),
            "undecided_rate": self.rate("undecided"),
            "bad_served_mean": statistics.fmean(bad),
            "bad_served_p95": float(bad[min(len(bad) - 1, int(0.95 * len(bad)))]),
            "seconds_to_decision_mean": statistics.fmean(decided) if decided else float("nan"),
        }


def _stable_spec(spec: FineTuneReleaseSpec) -> FineTuneReleaseSpec:
    wire = spec.to_wire()
    wire["bundle"]["dataset"]["version"] = f"{wire['bundle']['dataset']['version']}-stable"
    return FineTuneReleaseSpec.model_validate(wire)


class _Traffic:
    """Bad and total counts per revision that Prometheus can see, since the last window the
    analysis measured; and those not scraped yet."""

    def __init__(self) -> None:
        self.visible = np.zeros(4)  # candidate bad, candidate good, stable bad, stable good
        self.unscraped = np.zeros(4)

    def measure(self, rate_metric: str | None, fails: bool):
        def measure(metric: Metric, variables: dict[str, str]) -> Measurement:
            if fails:
                return Measurement(error="simulated: prometheus unreachable")
            if metric.effective_judge != "sequential":
                return Measurement(candidate_value=0.0, stable_value=0.0)
            x, good_c, y, good_b = self.visible
            n_c, n_b = x + good_c, y + good_b
            if metric.name != rate_metric:
                x = y = 0.0
            return Measurement(Counts(x, n_c), Counts(y, n_b))

        return measure


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
        total = sum(s.longest.total_seconds() for s in spec.stages)
        max_seconds = total + 3600
    rate_metric = next(
        (m.name for m in analysis.metrics if m.effective_judge == "sequential"), None
    )
    # The newest requests not yet scraped when the analysis measures: a share of the interval.
    lag = min(rng.uniform(0, scenario.scrape_interval), step) / step
    status = FineTuneReleaseStatus(
        stable_revision=stable, stable_bundle=stable_spec.bundle.to_wire(), phase="Promoted"
    )
    route: Route | None = Route.only(stable)
    replicas = {stable: spec.serving.replicas}
    traffic = _Traffic()
    bad_served, now = 0, START
    while (now - START).total_seconds() <= max_seconds:
        fails = rng.random() < scenario.scrape_gap
        measured = analyze("sim", "sim", spec, status, traffic.measure(rate_metric, fails), now)
        if measured.status.stage and measured.status.stage.analyzed_until == now:
            traffic.visible[:] = 0  # this window is folded in
        verdict = measured.verdict
        status = measured.status
        for _ in range(4):  # settle: objects ready and routes in place at once
            observed = Observed(
                revisions={r: ObservedRevision(r, n, n, True) for r, n in replicas.items()},
                route=route,
            )
            decision = plan("sim", spec, status, observed, now=now, verdict=verdict)
            status = decision.status
            replicas = {p.revision: p.replicas for p in decision.revisions if p.replicas}
            route = decision.route or route
        if status.stage and status.stage.started_at == now:
            traffic.visible[:] = 0  # the stage's first window starts now, as the operator's
        elapsed = (now - START).total_seconds()
        if status.stable_revision == candidate:
            return RunResult("promoted", bad_served, elapsed)
        if status.phase == "RolledBack":
            return RunResult("rolled-back", bad_served, elapsed)
        if status.phase == "Paused":
            return RunResult("paused", bad_served, elapsed)
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
        counts = np.array([x, n_candidate - x, y, n_stable - y])
        late = rng.binomial(counts, lag)  # after the last scrape: counted in the next window
        traffic.visible += traffic.unscraped + counts - late
        traffic.unscraped = late
        now += timedelta(seconds=step)
    return RunResult("undecided", bad_served, max_seconds)


def simulate(spec: FineTuneReleaseSpec, scenario: Scenario, runs: int, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    return Report(scenario, [simulate_run(spec, scenario, rng) for _ in range(runs)])
