"""The analysis clock: when a stage is measured, over which window, and what the measurement
does to status. The operator calls `analyze` before planning; the planner takes the verdict.

Each stage is measured every `interval` over the window [analyzedUntil, now), so every request
is counted once, however late a reconcile runs. When any metric cannot be measured (Error) the
whole window is kept and measured again later (with backoff): the evidence never folds in a
partial interval, and nothing is lost while Prometheus is away."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ftrelease.api.durations import parse_duration
from ftrelease.api.models import (
    FineTuneReleaseSpec,
    FineTuneReleaseStatus,
    Metric,
    MetricResult,
)
from ftrelease.api.revision import revision_of
from ftrelease.api.verdict import Event, StageVerdict, inconclusive

from .evaluate import Measurement, evaluate, verdict_of
from .judges import Counts
from .source import MetricError, MetricSource
from .templates import TEMPLATES, RateTemplate, render

MAX_BACKOFF = timedelta(minutes=2)

# One metric over one window, given the template variables (revision, interval, ...).
Measure = Callable[[Metric, dict[str, str]], Measurement]


def from_source(source: MetricSource, runtime: str) -> Measure:
    """Measures through a MetricSource (Prometheus) with the runtime's templates."""
    return lambda metric, variables: measure(metric, runtime, source, variables)


@dataclass
class AnalysisStep:
    status: FineTuneReleaseStatus  # with the analysis results and the stage's clock updated
    verdict: StageVerdict
    events: list[Event] = field(default_factory=list)


def _waiting(reason: str) -> StageVerdict:
    return StageVerdict(passed=False, reason=reason)


def analyze(
    release: str,
    namespace: str,
    spec: FineTuneReleaseSpec,
    status: FineTuneReleaseStatus,
    measure: Measure,
    now: datetime,
) -> AnalysisStep:
    """Measures the candidate's current stage if its window is due; otherwise the verdict of
    the last measurement. Status is copied, never changed in place."""
    status = status.model_copy(deep=True)
    stage = status.stage
    candidate = status.candidate_revision
    if stage is None or candidate != revision_of(spec.bundle) or not status.stable_revision:
        return AnalysisStep(status, _waiting("no stage to analyse"))
    if stage.started_at is None:
        return AnalysisStep(status, _waiting("analysis starts once the stage's route is in place"))
    analysis = spec.strategy.analysis
    interval = parse_duration(analysis.interval)
    start = stage.analyzed_until or stage.started_at
    due = stage.next_analysis_at or start + interval
    new_stage = stage.analyzed_until is None
    if now < due:
        if new_stage and stage.error_since is None:  # the last results are the last stage's
            return AnalysisStep(status, _waiting(f"first analysis of stage {stage.name} at {due}"))
        return AnalysisStep(status, verdict_of(status.analysis))

    variables = {
        "namespace": namespace,
        "release": release,
        "revision": candidate,
        "stableRevision": status.stable_revision,
        "interval": f"{max(1, round((now - start).total_seconds()))}s",
    }
    measurements = {m.name: measure(m, variables) for m in analysis.metrics}
    before = {r.metric: r for r in status.analysis}
    errors = {name: m.error for name, m in measurements.items() if m.error is not None}
    events: list[Event] = []
    if errors:
        # Keep the window; keep every metric's last result, marking the ones that failed.
        kept = {
            m.name: before.get(m.name) or MetricResult(metric=m.name, outcome="NoData")
            for m in analysis.metrics
        }
        for name, message in errors.items():
            kept[name] = kept[name].model_copy(update={"outcome": "Error", "message": message})
        status.analysis = list(kept.values())
        stage.errors += 1
        backoff = min(interval * 2 ** (stage.errors - 1), max(MAX_BACKOFF, interval))
        stage.next_analysis_at = now + backoff
        what = "; ".join(f"{name}: {message}" for name, message in errors.items())
        if stage.error_since is None:
            stage.error_since = now
            on_error = analysis.on_error
            events.append(
                Event(
                    "Warning",
                    "AnalysisError",
                    f"cannot measure the candidate, holding traffic where it is "
                    f"(onError: {on_error.action} after {on_error.after}): {what}",
                )
            )
        return AnalysisStep(status, verdict_of(status.analysis), events)

    if stage.error_since is not None:
        # The outage does not count against the stage's maxDuration.
        stage.waiting_since = (stage.waiting_since or stage.started_at) + (now - stage.error_since)
        gone = int((now - stage.error_since).total_seconds())
        events.append(
            Event("Normal", "AnalysisRecovered", f"metrics measurable again after {gone}s")
        )
    results, verdict = evaluate(analysis, measurements, status.analysis, new_stage)
    if stage.inconclusive:  # held for a person: still too few samples is still Inconclusive
        results = inconclusive(results)
    for result in results:
        previous = before.get(result.metric)
        if previous is None or previous.outcome != result.outcome or new_stage:
            warning = result.outcome == "Fail"
            events.append(Event("Warning" if warning else "Normal", "Analysis", describe(result)))
    status.analysis = results
    stage.analyzed_until = now
    stage.next_analysis_at = now + interval
    stage.errors = 0
    stage.error_since = None
    return AnalysisStep(status, verdict, events)


def measure(
    metric: Metric, runtime: str, source: MetricSource, variables: dict[str, str]
) -> Measurement:
    """One metric over the window: candidate and stable counts for rate templates, the
    candidate's value (and stable's, for the relative judge) otherwise."""
    if metric.latency_bound is not None:  # as the histogram's `le` label writes it: "2.0"
        seconds = parse_duration(metric.latency_bound).total_seconds()
        variables = {**variables, "latencyBound": f"{seconds:.1f}"}
    stable = {**variables, "revision": variables["stableRevision"]}
    try:
        if metric.template is not None:
            template = TEMPLATES[runtime].get(metric.template)
            if template is None:
                raise MetricError(f"template {metric.template} is not measured by {runtime}")
            if isinstance(template, RateTemplate):
                return Measurement(
                    candidate=_counts(source, template, variables),
                    stable=_counts(source, template, stable),
                )
            query = template.value
        else:
            assert metric.query is not None
            query = metric.query
        candidate_value = source.query(render(query, variables))
        stable_value = (
            source.query(render(query, stable)) if metric.effective_judge == "relative" else None
        )
        return Measurement(candidate_value=candidate_value, stable_value=stable_value)
    except MetricError as exc:
        return Measurement(error=str(exc))
    except KeyError as exc:  # an unknown {{variable}} in a custom query
        return Measurement(error=f"query of {metric.name}: {exc.args[0]}")


def _counts(source: MetricSource, template: RateTemplate, variables: dict[str, str]) -> Counts:
    # No series (nothing scraped for this revision yet) is zero requests: NoData, not Error.
    total = source.query(render(template.total, variables)) or 0.0
    if template.good is None:
        assert template.bad is not None
        bad = source.query(render(template.bad, variables)) or 0.0
    else:
        good = source.query(render(template.good, variables))
        if good is None and total > 0:
            raise MetricError(
                f'no histogram bucket le="{variables.get("latencyBound")}" for revision '
                f"{variables['revision']}: latencyBound must be one of the histogram's bounds"
            )
        bad = total - (good or 0.0)
    # Bad and total come from two counters: a scrape can catch a request counted in one and not
    # yet the other, and increase() extrapolates each, so a window's bad may exceed its total by
    # a fraction of a request. No rate is above 100% or below 0%.
    total = max(total, 0.0)
    return Counts(min(max(bad, 0.0), total), total)


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
