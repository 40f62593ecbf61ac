"""The stage's analysis clock (rollout.clock) and the planner together, through the one cycle:
the five outcomes and their consequences, on counts given per window."""

from __future__ import annotations

from datetime import timedelta

from ftrelease.rollout import cycle
from ftrelease.rollout.commands import RESUME

from tests.unit.rollout_world import Counted, World, spec_with, with_bundle_version

ANALYSIS = {
    "interval": "30s",
    "alpha": 0.01,
    "minSamples": 100,
    "onError": {"after": "5m", "action": "pause"},
    "metrics": [{"name": "errors", "template": "error-rate", "margin": 0}],
}
STAGES = [
    {"name": "canary-10", "weight": 10, "duration": "2m"},
    {"name": "full", "weight": 100},
]


def rollout(stages=STAGES, **analysis) -> World:
    spec = spec_with(**{"strategy.stages": stages, "strategy.analysis": {**ANALYSIS, **analysis}})
    world = World(spec)
    world.settle()
    assert world.status.phase == "Promoted"
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    return world


def run(world: World, measure, seconds: float, step: float = 10) -> list:
    events = []
    for _ in range(int(seconds / step)):
        world.now = world.now.__class__.fromtimestamp(
            world.now.timestamp() + step, world.now.tzinfo
        )
        events += world.step(measure=measure).events
    return events


def test_a_candidate_as_good_as_stable_passes_each_stage_on_its_own_samples():
    world = rollout()
    measure = Counted(0.01)
    events = run(world, measure, 600)
    assert world.status.stable_revision == world.revision
    assert world.status.phase == "Promoted"
    # Windows follow each other without overlap: 30s each (the clock is per interval).
    assert set(measure.windows) == {"30s"}
    passes = [e.message for e in events if e.reason == "Analysis" and "Pass" in e.message]
    assert len(passes) == 2  # one per stage: minSamples counts again in the full stage


def test_nodata_waits_and_becomes_inconclusive_at_the_stage_longest_time():
    world = rollout()
    events = run(world, Counted(None), 5 * 60)
    assert world.status.analysis[0].outcome == "NoData"
    assert world.status.phase == "Progressing"
    events += run(world, Counted(None), 2 * 60)  # past 3 x 2m
    assert world.status.phase == "Paused"
    assert world.status.analysis[0].outcome == "Inconclusive"
    assert "inconclusive" in world.status.stage.hold
    assert any(e.reason == "Inconclusive" for e in events)
    stalled = next(c for c in world.status.conditions if c.type == "Stalled")
    assert stalled.status == "True" and stalled.reason == "Held"
    # Resume: analysis tries again with a fresh max-duration clock; traffic arrives, it passes.
    world.step(measure=Counted(0.01), commands={RESUME: "resume"})
    assert world.status.stage.hold is None
    run(world, Counted(0.01), 10 * 60)
    assert world.status.stable_revision == world.revision


def test_error_holds_the_weights_then_pauses_after_on_error_after():
    world = rollout()
    measure = Counted(0.01)
    run(world, measure, 60)
    route = world.route
    measure.error = "prometheus at http://p:9090 is unreachable: connection refused"
    events = run(world, measure, 4 * 60)
    assert world.route == route and world.status.phase == "Progressing"
    assert "holding traffic" in world.status.message
    analysis = next(c for c in world.status.conditions if c.type == "Analysis")
    assert analysis.status == "False" and "unreachable" in analysis.message
    assert [e.reason for e in events].count("AnalysisError") == 1
    # Retries back off: fewer attempts than reconciles.
    attempts = world.status.stage.errors
    assert 2 <= attempts < 24
    events = run(world, measure, 90)
    assert world.status.phase == "Paused"
    assert "analysis failing for 5m" in world.status.stage.hold
    assert any(e.reason == "AnalysisErrorPaused" for e in events)
    assert world.route == route


def test_error_then_recovery_measures_the_whole_gap_once():
    world = rollout([{"name": "canary-10", "weight": 10, "duration": "10m"}, STAGES[1]])
    measure = Counted(0.01)
    run(world, measure, 60)
    measure.error = "unreachable"
    run(world, measure, 100)
    measure.error = None
    world.now += timedelta(seconds=60)  # past the retry's backoff
    decision = world.step(measure=measure)
    assert decision.events[0].reason == "AnalysisRecovered"
    # The first window after the outage spans it: nothing counted twice or lost.
    assert int(measure.windows[-1].removesuffix("s")) >= 160
    # And the outage does not count against the stage's maxDuration.
    stage = world.status.stage
    assert (stage.waiting_since - stage.started_at).total_seconds() >= 100


def test_on_error_rollback_rolls_back_with_the_reason():
    short = [{"name": "canary-10", "weight": 10, "duration": "10s"}, STAGES[1]]
    world = rollout(short, onError={"after": "2m", "action": "rollback"})
    measure = Counted(0.01)
    measure.error = "prometheus refused the query: bad_data: parse error"
    # Failing from the stage's first analysis on, past the stage's longest time (30s): held,
    # never Inconclusive, while retrying.
    run(world, measure, 100, step=1)
    assert world.status.phase == "Progressing" and world.status.stage.errors >= 1
    run(world, measure, 60)
    assert world.status.phase == "RolledBack"
    assert "analysis failing for 2m" in world.status.history[0].reason
    assert "bad_data" in world.status.history[0].reason


def test_twice_the_error_rate_fails_with_the_metric_figures_and_bound():
    world = rollout()
    events = run(world, Counted(0.2, 0.1, rps=40), 600)
    assert world.status.phase == "RolledBack"
    reason = world.status.history[0].reason
    assert reason.startswith("errors: candidate ") and ">= 100" in reason
    assert any(e.reason == "RolledBack" and reason in e.message for e in events)


def test_a_paused_rollout_still_rolls_back_on_fail():
    world = rollout()
    world.spec = world.spec.model_copy(update={"paused": True})
    run(world, Counted(0.5, 0.01, rps=40), 300)
    assert world.status.phase == "RolledBack"


def test_a_window_measured_late_counts_only_itself_and_holds_no_inconclusive_meanwhile():
    """The operator measures beside its reconciles: a due window may still be in flight when
    the stage's longest time comes, and its result may arrive seconds after the window ends."""
    world = rollout()  # canary-10: 2m, Inconclusive at 6m
    run(world, Counted(0.01, rps=0.1), 60)  # too few samples: NoData
    world.now += timedelta(minutes=6)
    release = cycle.Release(world.name, world.namespace, world.spec, world.status)
    window = cycle.wanted(release, world.now)
    assert window is not None
    waiting = cycle.cycle(release, world.observe(), world.now, analysis=True, measuring=window)
    assert waiting.status.phase == "Progressing" and waiting.status.stage.hold is None
    assert "measuring the window" in waiting.status.message
    assert waiting.requeue_after is None  # the measurement wakes the release, not a timer
    late = world.now + timedelta(seconds=5)
    measured = (window, cycle.measure_window(world.spec, window, Counted(None)))
    done = cycle.cycle(release, world.observe(), late, analysis=True, measured=measured)
    assert done.status.stage.analyzed_until == window.end  # the next window starts there
    assert done.status.phase == "Paused" and done.status.stage.inconclusive
