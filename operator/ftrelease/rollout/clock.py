"""The stage's analysis clock: when a stage is measured, over which window, and what a
measurement does to the stage. Pure; owned by the cycle (rollout.cycle), which measures only
the window asked for here.

Each stage is measured every `interval` over the window [analyzedUntil, now), so every request
is counted once, however late a reconcile runs. When any metric cannot be measured (Error) the
whole window is kept and measured again later (with backoff): the evidence never folds in a
partial interval, and nothing is lost while Prometheus is away."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ftrelease.analysis.evaluate import Measurement, describe, evaluate, verdict_of
from ftrelease.api.durations import parse_duration
from ftrelease.api.revision import revision_of
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus, MetricResult
from ftrelease.api.verdict import Event, StageVerdict, inconclusive

MAX_BACKOFF = timedelta(minutes=2)


@dataclass(frozen=True)
class Window:
    """The measurement the cycle wants: the candidate's stage over [start, end)."""

    start: datetime
    end: datetime
    variables: dict[str, str]  # for the metrics' templates: revision, interval, ...


def _waiting(reason: str) -> StageVerdict:
    return StageVerdict(passed=False, reason=reason)


def due(
    release: str,
    namespace: str,
    spec: FineTuneReleaseSpec,
    status: FineTuneReleaseStatus,
    now: datetime,
) -> Window | None:
    """The window to measure now, or None (nothing under analysis, or not due yet)."""
    at = next_due(spec, status)
    candidate, stable = status.candidate_revision, status.stable_revision
    if at is None or now < at or not stable or candidate != revision_of(spec.bundle):
        return None
    assert status.stage is not None and status.stage.started_at is not None
    start = status.stage.analyzed_until or status.stage.started_at
    variables = {
        "namespace": namespace,
        "release": release,
        "revision": candidate,
        "stableRevision": stable,
        "interval": f"{max(1, round((now - start).total_seconds()))}s",
    }
    return Window(start, now, variables)


def next_due(spec: FineTuneReleaseSpec, status: FineTuneReleaseStatus) -> datetime | None:
    """When the stage's next window is due (for requeue_after)."""
    stage = status.stage
    if stage is None or stage.started_at is None:
        return None
    start = stage.analyzed_until or stage.started_at
    return stage.next_analysis_at or start + parse_duration(spec.strategy.analysis.interval)


def standing(spec: FineTuneReleaseSpec, status: FineTuneReleaseStatus) -> StageVerdict:
    """The verdict when nothing is measured now: the last measurement's, or waiting for the
    stage's first one (the results in status are then the last stage's)."""
    stage = status.stage
    if stage is None or revision_of(spec.bundle) != status.candidate_revision:
        return _waiting("no stage to analyse")
    if stage.started_at is None:
        return _waiting("analysis starts once the stage's route is in place")
    if stage.analyzed_until is None and stage.error_since is None:
        return _waiting(f"first analysis of stage {stage.name} at {next_due(spec, status)}")
    return verdict_of(status.analysis)


def fold(
    spec: FineTuneReleaseSpec,
    status: FineTuneReleaseStatus,
    measurements: dict[str, Measurement],
    end: datetime,
    now: datetime,
) -> tuple[StageVerdict, list[Event]]:
    """Folds the measurements of the window ending at `end` into `status` (changed in place):
    results, evidence and the stage's clock. An Error anywhere keeps the whole window for a
    later retry, backed off from `now` (when the Error came back, however long that took)."""
    stage = status.stage
    assert stage is not None and stage.started_at is not None
    analysis = spec.strategy.analysis
    interval = parse_duration(analysis.interval)
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
        stage.next_analysis_at = now + min(
            interval * 2 ** (stage.errors - 1), max(MAX_BACKOFF, interval)
        )
        if stage.error_since is None:
            stage.error_since = now
            on_error = analysis.on_error
            what = "; ".join(f"{name}: {message}" for name, message in errors.items())
            events.append(
                Event(
                    "Warning",
                    "AnalysisError",
                    f"cannot measure the candidate, holding traffic where it is "
                    f"(onError: {on_error.action} after {on_error.after}): {what}",
                )
            )
        return verdict_of(status.analysis), events

    if stage.error_since is not None:
        # The outage does not count against the stage's maxDuration.
        stage.waiting_since = (stage.waiting_since or stage.started_at) + (now - stage.error_since)
        gone = int((now - stage.error_since).total_seconds())
        events.append(
            Event("Normal", "AnalysisRecovered", f"metrics measurable again after {gone}s")
        )
    new_stage = stage.analyzed_until is None
    results, verdict = evaluate(analysis, measurements, status.analysis, new_stage)
    if stage.inconclusive:  # held for a person: still too few samples is still Inconclusive
        results = inconclusive(results)
    for result in results:
        previous = before.get(result.metric)
        if previous is None or previous.outcome != result.outcome or new_stage:
            warning = result.outcome == "Fail"
            events.append(Event("Warning" if warning else "Normal", "Analysis", describe(result)))
    status.analysis = results
    stage.analyzed_until = end
    stage.next_analysis_at = end + interval
    stage.errors = 0
    stage.error_since = None
    return verdict, events
