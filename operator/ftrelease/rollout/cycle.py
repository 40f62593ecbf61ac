"""One cycle of one release: analyze, then plan. The one implementation, run by the operator,
by `kubectl finetune simulate` and by the unit tests' world alike; each brings its own reader
and applier (the operator's reads a watch cache and writes to the apiserver; the others are
in memory).

    window = wanted(release, now)                    pure: the measurement due, if any
    measurements = measure each metric over window   the caller's I/O (Prometheus)
    decision = cycle(release, observed, now, ...)    pure: status, objects, route, events

A command that changes course (abort, rollback) is acted on before any measurement: `wanted` asks for
none while one is pending, so a slow or hung Prometheus never delays it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ftrelease.analysis.evaluate import Measure, Measurement
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus
from ftrelease.api.verdict import NO_ANALYSIS, StageVerdict

from . import clock, outbox
from .commands import ABORT, ROLLBACK
from .planner import plan
from .types import Confirmations, Decision, Observed


@dataclass(frozen=True)
class Release:
    """What one cycle reads of the FineTuneRelease itself."""

    name: str
    namespace: str
    spec: FineTuneReleaseSpec
    status: FineTuneReleaseStatus
    generation: int | None = None
    commands: dict[str, str] = field(default_factory=dict)  # finetune.dev/* annotations
    bundle_set_by: str | None = None  # the field manager that last wrote spec.bundle


class Cluster(Protocol):
    """The thin I/O around the cycle, for one release: the operator's reads its watch cache and
    writes to the apiserver; the in-memory world (rollout.world) is the tests' and simulate's."""

    def observe(self) -> Observed:
        """What the release owns now: its revisions and the route in place."""

    def apply(self, decision: Decision, observed: Observed) -> None:
        """Writes the Decision: objects, status, route, deletions, consumed commands, Events."""


def wanted(release: Release, now: datetime) -> clock.Window | None:
    """The window to measure before planning, or None."""
    if ABORT in release.commands or ROLLBACK in release.commands:
        return None
    return clock.due(release.name, release.namespace, release.spec, release.status, now)


def cycle(
    release: Release,
    observed: Observed,
    now: datetime,
    *,
    analysis: bool,
    measured: tuple[clock.Window, dict[str, Measurement]] | None = None,
    measuring: clock.Window | None = None,
    confirmations: Confirmations | None = None,
) -> Decision:
    """The Decision for `release` at `now`, given `measured`: a window `wanted` asked for and
    its measurements (None: nothing was due). `measuring`: a due window whose measurements are
    still on their way; the stage waits for them (it never completes on an older verdict).
    `analysis` False: the operator runs without Prometheus, and stages complete on their clocks
    and approvals. `confirmations`: the confirm webhooks' answers (rollout.confirm). The
    Decision's Events go into the notifications' outbox with its status."""
    spec, status = release.spec, release.status.model_copy(deep=True)
    events = []
    if not analysis:
        verdict = NO_ANALYSIS
    elif measured is not None:
        window, measurements = measured
        # The clock moves to the window's end: requests after it are the next window's.
        verdict, events = clock.fold(spec, status, measurements, window.end, now)
    elif measuring is not None:
        # Not passed until measured; still in Error if the last attempt was (onError's clock).
        last = clock.standing(spec, status)
        reason = last.reason if last.error else f"measuring the window since {measuring.start}"
        verdict = StageVerdict(passed=False, error=last.error, pending=True, reason=reason)
    else:
        verdict = clock.standing(spec, status)
    decision = plan(
        release.name,
        spec,
        status,
        observed,
        now=now,
        generation=release.generation,
        commands=release.commands,
        verdict=verdict,
        bundle_set_by=release.bundle_set_by,
        confirmations=confirmations,
    )
    decision.events[:0] = events
    outbox.post(spec, decision.status, decision.events, now)
    if analysis and measuring is None:  # a measurement in flight wakes the release when done
        due = clock.next_due(spec, decision.status)
        if due is not None:
            decision.requeue((due - now).total_seconds())
    return decision


def run(
    release: Release,
    observed: Observed,
    now: datetime,
    measure: Measure | None,
    confirmations: Confirmations | None = None,
) -> Decision:
    """Analyze, then plan, with `measure` doing the measuring (None: no analysis)."""
    window = wanted(release, now) if measure is not None else None
    measured = None
    if window is not None:
        assert measure is not None
        measured = (window, measure_window(release.spec, window, measure))
    return cycle(
        release,
        observed,
        now,
        analysis=measure is not None,
        measured=measured,
        confirmations=confirmations,
    )


def measure_window(
    spec: FineTuneReleaseSpec, window: clock.Window, measure: Measure
) -> dict[str, Measurement]:
    return {m.name: measure(m, window.variables) for m in spec.strategy.analysis.metrics}
