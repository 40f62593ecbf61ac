"""Synthetic rollouts: a release's stages and analysis run against simulated traffic, through
the one cycle (rollout.cycle) the operator runs, on the in-memory world (rollout.world).
Platform teams use it to see, before shipping an analysis, how often it would roll back a
healthy model and how many bad requests a regression would serve first.

Per analysis interval: requests arrive as Poisson(rps x interval); the route of the moment
splits them (a mirror copies requests to the candidate without serving its answers); each
request of a revision is bad, for each rate metric, with that metric's rate. Prometheus sees
counts as of its last scrape (`scrape_interval`), so the newest requests are counted in the
next window; a failed measurement (probability `scrape_gap`: Prometheus unreachable) is the
Error outcome, and its window is measured again later. Objects are ready at once; the operator
reconciles once per interval; a person approves a manual stage `approve_after` seconds after it
starts (None: never).

Every metric is simulated. Rate metrics (the rate templates) draw counts: stable at
`baseline_rate`, the candidate at `candidate_rate` on the `regressed` metrics (all of them when
empty) and at `baseline_rate` on the others. Other metrics (custom queries, tokens per request)
take their values from `values`: a number for the candidate and stable, or `pass`, `fail` or
`nodata` to treat the metric so; a relative metric without one is simulated unchanged, a
threshold metric without one cannot be simulated (`unsimulated` names them)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from ftrelease.analysis.evaluate import Measurement
from ftrelease.analysis.judges import Counts
from ftrelease.api.bundle import Bundle
from ftrelease.api.durations import parse_duration
from ftrelease.api.revision import revision_of
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus
from ftrelease.api.strategy import RATE_TEMPLATES, Metric
from ftrelease.rollout.commands import APPROVE
from ftrelease.rollout.types import EvalJobPlan, Route
from ftrelease.rollout.world import World

TREATMENTS = ("pass", "fail", "nodata")


@dataclass(frozen=True)
class Scenario:
    rps: float = 100.0
    baseline_rate: float = 0.005  # stable's bad rate, every rate metric
    regression: float = 1.0  # candidate rate = baseline x regression (+ added_rate)
    added_rate: float = 0.0
    regressed: tuple[str, ...] = ()  # the rate metrics the candidate is worse on; () = all
    values: dict[str, str] = field(default_factory=dict)  # other metrics: "1.5", "1.5:1.2", "pass"
    scrape_gap: float = 0.0  # probability that a measurement fails (Error)
    scrape_interval: float = 15.0  # seconds; Prometheus sees counts as of its last scrape
    approve_after: float | None = 0.0  # seconds until a person approves; None: never

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


def unsimulated(spec: FineTuneReleaseSpec, scenario: Scenario) -> list[str]:
    """Problems that keep the scenario from simulating this release's metrics, one per line."""
    metrics = {m.name: m for m in spec.strategy.analysis.metrics}
    problems = [
        f"--metric {name}: the release has no rate metric {name} "
        f"(rate metrics: {', '.join(n for n, m in metrics.items() if _is_rate(m)) or 'none'})"
        for name in scenario.regressed
        if name not in metrics or not _is_rate(metrics[name])
    ]
    for name, value in scenario.values.items():
        if name not in metrics or _is_rate(metrics[name]):
            problems.append(f"--value {name}: the release has no non-rate metric {name}")
        elif value not in TREATMENTS:
            try:
                _values(value)
            except ValueError:
                problems.append(
                    f"--value {name}={value}: give NUMBER, CANDIDATE:STABLE or one of "
                    f"{', '.join(TREATMENTS)}"
                )
    for metric in metrics.values():
        threshold = not _is_rate(metric) and metric.effective_judge == "threshold"
        if threshold and metric.name not in scenario.values:
            problems.append(
                f"metric {metric.name} ({metric.query or metric.template}, threshold) is not "
                f"simulated: give --value {metric.name}=NUMBER (its value each interval) or "
                f"--value {metric.name}={'|'.join(TREATMENTS)}"
            )
    return problems


def _is_rate(metric: Metric) -> bool:
    return metric.template in RATE_TEMPLATES


def _values(text: str) -> tuple[float, float]:
    candidate, _, stable = text.partition(":")
    return float(candidate), float(stable or candidate)


def _stable_spec(spec: FineTuneReleaseSpec) -> FineTuneReleaseSpec:
    wire = spec.to_wire()
    wire["bundle"]["dataset"]["version"] = f"{wire['bundle']['dataset']['version']}-stable"
    return FineTuneReleaseSpec.model_validate(wire)


class _Traffic:
    """Per rate metric, the bad counts and, for all, the totals that Prometheus can see since
    the last window the analysis measured; and those not scraped yet."""

    def __init__(self, spec: FineTuneReleaseSpec, scenario: Scenario) -> None:
        self.scenario = scenario
        self.metrics = spec.strategy.analysis.metrics
        self.rates = [m.name for m in self.metrics if _is_rate(m)]
        regressed = scenario.regressed or tuple(self.rates)
        # Columns: candidate total, stable total, then candidate and stable bad per rate metric.
        self.candidate_rates = np.array(
            [
                scenario.candidate_rate if n in regressed else scenario.baseline_rate
                for n in self.rates
            ]
        )
        self.visible = np.zeros(2 + 2 * len(self.rates))
        self.unscraped = np.zeros_like(self.visible)
        self.fails = False

    def clear(self) -> None:
        self.visible[:] = 0

    def counts(self, name: str) -> tuple[Counts, Counts]:
        i = self.rates.index(name)
        n_c, n_b = self.visible[0], self.visible[1]
        return Counts(self.visible[2 + 2 * i], n_c), Counts(self.visible[3 + 2 * i], n_b)

    def measure(self, metric: Metric, variables: dict[str, str]) -> Measurement:
        if self.fails:
            return Measurement(error="simulated: prometheus unreachable")
        if _is_rate(metric):
            candidate, stable = self.counts(metric.name)
            if metric.effective_judge == "sequential":
                return Measurement(candidate, stable)
            return Measurement(candidate_value=_ratio(candidate), stable_value=_ratio(stable))
        value = self.scenario.values.get(metric.name)
        if value is None:  # a relative metric: unchanged
            return Measurement(candidate_value=1.0, stable_value=1.0)
        if value == "nodata":
            return Measurement()
        if value in ("pass", "fail"):
            return _treated(metric, value == "pass")
        candidate_value, stable_value = _values(value)
        return Measurement(candidate_value=candidate_value, stable_value=stable_value)

    def serve(self, rng: np.random.Generator, route: Route, candidate: str, seconds: float) -> int:
        """One interval of traffic on `route`; returns the candidate's bad answers served."""
        arrivals = rng.poisson(self.scenario.rps * seconds)
        live = rng.binomial(arrivals, route.weight_of(candidate) / 100)
        mirrored = (
            rng.binomial(arrivals, route.mirror_percent / 100)
            if route.mirror_to == candidate
            else 0
        )
        n_candidate, n_stable = live + mirrored, arrivals - live
        x_live = rng.binomial(live, self.candidate_rates)
        x = x_live + rng.binomial(mirrored, self.candidate_rates)
        y = rng.binomial(n_stable, self.scenario.baseline_rate, size=len(self.rates))
        counts = np.concatenate([[n_candidate, n_stable], np.column_stack([x, y]).ravel()])
        # After the last scrape: counted in the next window.
        lag = min(rng.uniform(0, self.scenario.scrape_interval), seconds) / seconds
        late = rng.binomial(counts.astype(np.int64), lag)
        self.visible += self.unscraped + counts - late
        self.unscraped = late
        # A request is bad if any rate metric finds it bad; at most `live` of them.
        return int(min(x_live.max(initial=0), live)) if len(self.rates) else 0


def _ratio(counts: Counts) -> float | None:
    return counts.bad / counts.total if counts.total > 0 else None


def _treated(metric: Metric, ok: bool) -> Measurement:
    """A value on the passing or failing side of the metric's judge."""
    if metric.effective_judge == "relative":
        return Measurement(candidate_value=1.0 if ok else 2.0 + metric.margin * 2, stable_value=1.0)
    if metric.max is not None:
        return Measurement(candidate_value=metric.max if ok else metric.max * 2 + 1)
    assert metric.min is not None
    return Measurement(candidate_value=metric.min if ok else metric.min / 2 - 1)


def simulate_run(
    spec: FineTuneReleaseSpec,
    scenario: Scenario,
    rng: np.random.Generator,
    max_seconds: float | None = None,
) -> RunResult:
    stable_spec = _stable_spec(spec)
    analysis = spec.strategy.analysis
    step = parse_duration(analysis.interval).total_seconds()
    if max_seconds is None:
        max_seconds = sum(s.longest.total_seconds() for s in spec.stages) + 3600
    world = World(
        spec,
        status=FineTuneReleaseStatus(
            stable_revision=revision_of(stable_spec.bundle),
            stable_bundle=stable_spec.bundle.to_wire(),
            phase="Promoted",
        ),
        evaluator=_declared_as_measured(stable_spec.bundle),
    )
    stable = world.status.stable_revision
    assert stable is not None
    world.replicas = {stable: spec.serving.replicas}
    world.route = Route.only(stable)
    candidate, start = world.revision, world.now
    traffic = _Traffic(spec, scenario)
    bad_served = 0
    while (elapsed := (world.now - start).total_seconds()) <= max_seconds:
        traffic.fails = rng.random() < scenario.scrape_gap
        before = world.status.stage
        decision = world.step(commands=_approval(world, scenario), measure=traffic.measure)
        stage = decision.status.stage
        if stage and before and stage.analyzed_until == world.now and before.index == stage.index:
            traffic.clear()  # this window is folded in
        world.settle(3, measure=traffic.measure)  # objects ready and routes in place at once
        if world.status.stage and world.status.stage.started_at == world.now:
            traffic.clear()  # the stage's first window starts now, as the operator's
        if world.status.stable_revision == candidate:
            return RunResult("promoted", bad_served, elapsed)
        if world.status.phase == "RolledBack":
            return RunResult("rolled-back", bad_served, elapsed)
        if world.status.phase == "Paused":
            return RunResult("paused", bad_served, elapsed)
        assert world.route is not None
        bad_served += traffic.serve(rng, world.route, candidate, step)
        world.now += timedelta(seconds=step)
    return RunResult("undecided", bad_served, max_seconds)


def _declared_as_measured(stable_bundle: Bundle) -> Callable[[EvalJobPlan], tuple[str, str]]:
    """No evals run in a simulation: each eval Job "measures" what the bundles declare."""
    stable = revision_of(stable_bundle)

    def evaluate(plan: EvalJobPlan) -> tuple[str, str]:
        scores = (stable_bundle if plan.target == stable else plan.bundle).evals.scores
        return "Succeeded", json.dumps({"scores": scores})

    return evaluate


def _approval(world: World, scenario: Scenario) -> dict[str, str] | None:
    """A person approves a manual stage `approve_after` seconds after it starts."""
    stage = world.status.stage
    if stage is None or stage.started_at is None or stage.approved:
        return None
    manual = world.spec.stages[stage.index].approval == "manual"
    if not manual or scenario.approve_after is None:
        return None
    waited = (world.now - stage.started_at).total_seconds()
    return {APPROVE: stage.name} if waited >= scenario.approve_after else None


def simulate(spec: FineTuneReleaseSpec, scenario: Scenario, runs: int, seed: int) -> Report:
    problems = unsimulated(spec, scenario)
    if problems:
        raise ValueError("; ".join(problems))
    rng = np.random.default_rng(seed)
    return Report(scenario, [simulate_run(spec, scenario, rng) for _ in range(runs)])
