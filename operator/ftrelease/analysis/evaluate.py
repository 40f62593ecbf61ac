"""One analysis interval: measurements in, per-metric results and the stage's verdict out.
Pure; the operator measures (MetricSource) and feeds the verdict to the planner.

Outcomes (DESIGN.md §2), each distinct: Pass (enough samples, no evidence the candidate is
worse); Fail (evidence it is worse, or a threshold breached: roll back); NoData (too few
candidate samples: wait, never promote, never fail); Error (the source failed: hold, never
promote). Inconclusive belongs to the stage clock, not to one interval."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ftrelease.api.status import MetricResult
from ftrelease.api.strategy import Analysis, Metric
from ftrelease.api.verdict import StageVerdict

from .judges import (
    COMPONENTS,
    Counts,
    Evidence,
    fails,
    relative_holds,
    sequential_update,
    threshold_holds,
)


@dataclass(frozen=True)
class Measurement:
    """One metric over one interval: counts for rate metrics, values for the others; or the
    error that kept the source from answering."""

    candidate: Counts | None = None
    stable: Counts | None = None
    candidate_value: float | None = None
    stable_value: float | None = None
    error: str | None = None


# One metric over one window, given the template variables (revision, interval, ...).
Measure = Callable[[Metric, dict[str, str]], Measurement]


def _evidence(previous: MetricResult | None) -> Evidence:
    if previous is None or previous.log_evidence is None:
        return Evidence()
    components = tuple(previous.evidence_components or ())
    if len(components) != COMPONENTS:  # from an older judge: each carries the average so far
        components = (previous.log_evidence,) * COMPONENTS
    return Evidence(
        log_e=previous.log_evidence,
        components=components,
        candidate_bad=previous.candidate_bad or 0.0,
        stable_bad=previous.stable_bad or 0.0,
        candidate_total=previous.candidate_total or 0.0,
        stable_total=previous.stable_total or 0.0,
    )


def _rate(bad: float, total: float) -> float | None:
    return bad / total if total > 0 else None


def judge(
    metric: Metric,
    measurement: Measurement,
    previous: MetricResult | None,
    alpha_per_metric: float,
    min_samples: int,
    new_stage: bool = False,
) -> MetricResult:
    """`previous` carries the candidate's evidence across stages; `new_stage` restarts the
    stage's sample count (minSamples is per stage)."""
    name = metric.name
    if measurement.error is not None:
        carried = previous.model_copy() if previous else MetricResult(metric=name, outcome="Error")
        return carried.model_copy(update={"outcome": "Error", "message": measurement.error})
    kind = metric.effective_judge
    if kind == "sequential":
        if measurement.candidate is None or measurement.stable is None:
            return MetricResult(
                metric=name, outcome="NoData", message="no counts for this interval"
            )
        evidence = sequential_update(
            _evidence(previous), measurement.candidate, measurement.stable, metric.margin
        )
        stage_samples = int(
            (0 if new_stage or previous is None else previous.stage_samples or 0)
            + measurement.candidate.total
        )
        candidate_rate = _rate(evidence.candidate_bad, evidence.candidate_total)
        stable_rate = _rate(evidence.stable_bad, evidence.stable_total)
        bound = 1 / alpha_per_metric
        result = MetricResult(
            metric=name,
            outcome="Pass",
            value=candidate_rate,
            stable_value=stable_rate,
            evidence=math.exp(min(evidence.log_e, 700.0)),
            samples=int(evidence.candidate_total),
            stage_samples=stage_samples,
            log_evidence=evidence.log_e,
            evidence_components=list(evidence.components),
            candidate_bad=evidence.candidate_bad,
            stable_bad=evidence.stable_bad,
            candidate_total=evidence.candidate_total,
            stable_total=evidence.stable_total,
        )
        if fails(evidence, alpha_per_metric):
            return result.model_copy(
                update={
                    "outcome": "Fail",
                    "message": (
                        f"{name}: candidate {_pct(candidate_rate)} vs stable {_pct(stable_rate)} "
                        f"(margin {metric.margin:g}); evidence {result.evidence:.3g} >= {bound:.3g}"
                    ),
                }
            )
        if stage_samples < min_samples:
            return result.model_copy(
                update={
                    "outcome": "NoData",
                    "message": f"{name}: {stage_samples} of {min_samples} candidate samples",
                }
            )
        return result
    value = measurement.candidate_value
    # At a 100% stage stable serves nothing: compare with its last measured value.
    stable = measurement.stable_value
    if stable is None and previous is not None:
        stable = previous.stable_value
    if value is None or (kind == "relative" and stable is None):
        return MetricResult(metric=name, outcome="NoData", message=f"{name}: no value yet")
    if kind == "threshold":
        ok = threshold_holds(value, metric.min, metric.max)
        bound = (
            f"min {metric.min}"
            if metric.min is not None and value < metric.min
            else f"max {metric.max}"
        )
        return MetricResult(
            metric=name,
            outcome="Pass" if ok else "Fail",
            value=value,
            message=None if ok else f"{name}: {value:.4g} breaks {bound}",
        )
    assert stable is not None
    ok = relative_holds(value, stable, metric.margin)
    return MetricResult(
        metric=name,
        outcome="Pass" if ok else "Fail",
        value=value,
        stable_value=stable,
        message=None
        if ok
        else (
            f"{name}: candidate {value:.4g} vs stable {stable:.4g} "
            f"exceeds (1 + {metric.margin:g}) x stable"
        ),
    )


def evaluate(
    analysis: Analysis,
    measurements: dict[str, Measurement],
    previous: list[MetricResult],
    new_stage: bool = False,
) -> tuple[list[MetricResult], StageVerdict]:
    """Judges every metric (alpha split evenly across them, Bonferroni) and sums them up."""
    before = {r.metric: r for r in previous}
    alpha = analysis.alpha / len(analysis.metrics)
    results = [
        judge(
            m,
            measurements.get(m.name, Measurement(error="not measured")),
            before.get(m.name),
            alpha,
            analysis.min_samples,
            new_stage,
        )
        for m in analysis.metrics
    ]
    return results, verdict_of(results)


def verdict_of(results: list[MetricResult]) -> StageVerdict:
    """The stage's verdict from its metrics: any Fail fails; any Error holds; NoData waits."""
    if not results:
        return StageVerdict(passed=False, reason="no analysis yet")
    failed = [r for r in results if r.outcome == "Fail"]
    if failed:
        return StageVerdict(
            passed=False, failed=True, reason="; ".join(r.message or r.metric for r in failed)
        )
    errors = [r for r in results if r.outcome == "Error"]
    waiting = [r for r in results if r.outcome != "Pass"]
    if waiting:
        return StageVerdict(
            passed=False,
            error=bool(errors),
            reason="; ".join(f"{r.outcome} {r.message or r.metric}" for r in waiting),
        )
    return StageVerdict()


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.3%}"


def describe(result: MetricResult) -> str:
    """One line per metric for Events and logs: outcome, both figures, evidence, samples."""
    parts = [f"{result.metric}: {result.outcome}"]
    if result.value is not None:
        parts.append(f"candidate {result.value:.4g}")
    if result.stable_value is not None:
        parts.append(f"stable {result.stable_value:.4g}")
    if result.evidence is not None:
        parts.append(f"evidence {result.evidence:.3g}")
    if result.samples is not None:
        parts.append(f"{result.samples} candidate samples")
    text = ", ".join(parts)
    return f"{text} ({result.message})" if result.message else text
