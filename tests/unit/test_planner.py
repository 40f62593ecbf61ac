"""The rollout planner, driven through whole lifecycles without a cluster."""

from __future__ import annotations

import json
from datetime import timedelta

from ftrelease.rollout.commands import ABORT, APPROVE, PROMOTE, RESUME, RETRY
from ftrelease.rollout.replicas import candidate_replicas
from ftrelease.rollout.types import Route

from tests.unit.rollout_world import Counted, World, spec_with, with_bundle_version


def promoted_world(**changes) -> World:
    world = World(spec_with(**changes))
    world.settle()
    assert world.status.phase == "Promoted"
    return world


def test_first_release_waits_for_available_then_takes_all_traffic():
    world = World(spec_with())
    world.unready.add(world.revision)
    decision = world.step()
    assert world.status.phase == "Pending"
    assert world.route is None, "no traffic to a revision that is not Available"
    assert decision.revisions[0].replicas == 2
    world.unready.clear()
    world.settle()
    assert world.status.phase == "Promoted"
    assert world.status.stable_revision == world.revision
    assert world.route == Route.only(world.revision)


def test_a_new_bundle_walks_every_stage_with_exact_routes_and_is_promoted():
    world = promoted_world()
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "2026-11-27")
    candidate = world.revision
    world.settle()
    seen = []
    for _ in range(8):
        stage = world.status.stage
        if stage is None:
            break
        seen.append((stage.name, world.route))
        assert stage.started_at == world.now, "the clock starts when the route is in place"
        world.advance(30)
        assert world.status.stage.name == stage.name, "the stage lasts its full duration"
        world.advance(31)
    assert seen == [
        ("shadow", Route(((stable, 100), (candidate, 0)), candidate, 100)),
        ("canary-1", Route(((stable, 99), (candidate, 1)))),
        ("canary-10", Route(((stable, 90), (candidate, 10)))),
        ("full", Route(((stable, 0), (candidate, 100)))),
    ]
    assert world.status.phase == "Promoted"
    assert world.status.stable_revision == candidate
    assert world.route == Route.only(candidate)
    assert [h.outcome for h in world.status.history][:2] == ["Promoted", "Promoted"]
    # The old stable keeps all its pods for scaleDownDelay (10m), then one pod for
    # keepPreviousStable's 24h (a quick rollback), then none; its objects are kept.
    assert world.replicas[stable] == 2
    world.advance(601)
    assert world.replicas[stable] == 1
    world.advance(24 * 3600 - 601)
    assert world.replicas[stable] == 0
    assert stable in world.bundles


def test_auto_canary_replicas_follow_the_weight():
    spec = spec_with(**{"serving.replicas": 20})
    stages = {s.name: s for s in spec.stages}
    assert candidate_replicas(spec, stages["canary-1"]) == 1
    assert candidate_replicas(spec, stages["canary-10"]) == 2
    assert candidate_replicas(spec, stages["shadow"]) == 20
    assert candidate_replicas(spec, stages["full"]) == 20
    fixed = spec_with(**{"serving.replicas": 20, "serving.canaryReplicas": 3})
    assert candidate_replicas(fixed, stages["canary-1"]) == 3


def test_route_moves_only_after_the_candidate_has_its_replicas():
    world = promoted_world(**{"serving.replicas": 20})
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    world.unready.add(world.revision)
    world.settle()
    assert world.status.phase == "Pending"
    assert world.route == Route.only(stable)
    assert world.status.stage.started_at is None
    world.unready.clear()
    world.settle()
    assert world.status.phase == "Shadow"
    assert world.route.mirror_to == world.revision


def test_manual_approval_holds_the_stage_until_approved():
    world = promoted_world(
        **{
            "strategy.stages": [
                {"name": "canary", "weight": 10, "duration": "1m", "approval": "manual"},
                {"name": "full", "weight": 100},
            ]
        }
    )
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    world.advance(3600)
    assert world.status.stage.name == "canary"
    assert "waiting for approval" in world.status.message
    world.step(commands={APPROVE: "canary"})
    assert world.decisions[-1].consumed_commands == [APPROVE]
    world.settle()
    assert world.status.phase == "Promoted"


def test_abort_rolls_back_in_one_route_write_and_keeps_the_candidate_warm():
    world = promoted_world()
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    candidate = world.revision
    world.settle()
    world.advance(61)
    world.advance(61)
    assert world.status.stage.name == "canary-10"
    writes = world.route_writes
    decision = world.step(commands={ABORT: "on-call: bad answers"})
    assert world.route_writes == writes + 1
    assert decision.route == Route.only(stable)
    assert world.status.phase == "RolledBack"
    assert "on-call: bad answers" in world.status.message
    assert world.status.history[0].outcome == "RolledBack"
    assert world.replicas[candidate] > 0, "kept warm for abortScaleDownDelay"
    world.advance(31)
    assert world.replicas[candidate] == 0
    # The failed bundle is not retried by itself ...
    world.advance(600)
    assert world.status.phase == "RolledBack"
    assert world.route == Route.only(stable)
    # ... only on command.
    world.step(commands={RETRY: "fixed the prompt"})
    world.settle()
    assert world.status.phase == "Shadow"


def test_failed_analysis_rolls_back_with_its_reason():
    world = promoted_world()
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    broken = Counted(0.5, 0.01, rps=200)
    world.advance(31, measure=broken)
    decision = next(d for d in world.decisions if d.status.phase == "RolledBack")
    assert world.status.phase == "RolledBack"
    assert world.status.message.startswith("rolled back to stable")
    assert "errors: candidate 50.000% vs stable 1.000%" in world.status.message
    assert any(e.reason == "RolledBack" and e.type == "Warning" for e in decision.events)


def test_a_stage_without_passing_analysis_does_not_complete():
    world = promoted_world()
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    few = Counted(0.01, rps=0.2)  # 3 candidate samples a window, far short of minSamples
    for _ in range(5):  # 150s: past the stage's duration (1m), short of Inconclusive (3m)
        world.advance(30, measure=few)
    assert world.status.stage.name == "shadow"
    assert world.status.analysis[0].outcome == "NoData"
    assert " of 500 candidate samples" in world.status.message


def test_a_bundle_change_mid_rollout_supersedes_the_candidate():
    world = promoted_world()
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    first = world.revision
    world.settle()
    world.advance(61)
    assert world.status.stage.name == "canary-1"
    world.spec = with_bundle_version(world.spec, "v3")
    world.settle()
    assert world.status.candidate_revision == world.revision != first
    assert world.status.stage.name == "shadow", "starts again from the first stage"
    assert world.status.history[0].outcome == "Superseded"
    assert world.status.history[0].revision == first
    assert first not in world.route.revisions
    assert world.route.weight_of(stable) == 100


def test_setting_the_bundle_back_to_stable_ends_the_rollout_without_new_objects():
    world = promoted_world()
    stable_spec, stable = world.spec, world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    world.advance(61)
    known = set(world.replicas)
    world.spec = stable_spec
    world.settle()
    assert set(world.replicas) <= known
    assert world.status.phase == "RolledBack"
    assert world.status.candidate_revision is None
    assert world.route == Route.only(stable)
    ready = {c.type: c.status for c in world.status.conditions}
    assert ready == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}


def test_a_bundle_equal_to_a_retained_revision_reuses_it_without_stages():
    world = promoted_world()
    old_spec, old = world.spec, world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    for _ in range(5):
        world.advance(61)
    new = world.revision
    assert world.status.stable_revision == new
    world.advance(24 * 3600)  # past keepPreviousStable: cold
    assert world.replicas[old] == 0
    world.spec = old_spec
    world.step()
    assert world.replicas[old] == 2, "scaled back up, same objects"
    assert world.route == Route.only(new)
    world.settle()
    assert world.status.stable_revision == old
    assert world.status.phase == "RolledBack"
    assert world.route == Route.only(old)


def test_eval_gate_keeps_a_bundle_out_of_production():
    world = promoted_world(**{"gate.evals.minScores": {"format_validity": 0.99}})
    stable = world.revision
    spec = with_bundle_version(world.spec, "v2")
    spec.bundle.evals.scores["format_validity"] = 0.9
    world.spec = spec
    world.settle()
    assert world.status.phase == "Gated"
    assert "format_validity = 0.9 is below the gate's minimum 0.99" in world.status.message
    assert set(world.replicas) == {stable}, "nothing deployed"


def test_eval_gate_compares_regressions_against_stable():
    world = promoted_world(**{"gate.evals.maxRegression": {"accuracy": 0.01}})
    spec = with_bundle_version(world.spec, "v2")
    spec.bundle.evals.scores["accuracy"] = 0.85  # stable has 0.91
    world.spec = spec
    world.settle()
    assert world.status.phase == "Gated"
    assert "regresses 0.06" in world.status.message


def test_revision_history_limit_deletes_the_oldest():
    world = promoted_world(**{"strategy.revisionHistoryLimit": 1})
    revisions = [world.revision]
    for version in ("v2", "v3", "v4"):
        world.spec = with_bundle_version(world.spec, version)
        for _ in range(5):
            world.advance(61)
        revisions.append(world.revision)
        assert world.status.stable_revision == world.revision
    assert set(world.replicas) == {revisions[-1], revisions[-2]}


def test_a_restart_resumes_the_stage_without_rewriting_the_route_or_its_clock():
    world = promoted_world()
    world.spec = with_bundle_version(world.spec, "v2")
    world.advance(61)
    started = world.status.stage.started_at
    writes = world.route_writes
    world.now += timedelta(seconds=20)
    # A new operator process: same status and observed objects, a fresh world around them.
    restarted = World(
        world.spec, world.now, world.status, world.replicas, world.bundles, world.route
    )
    restarted.settle()
    assert restarted.route_writes == 0
    assert restarted.status.stage.started_at == started
    assert restarted.status.stage.name == "shadow"
    # The stage ends on its original clock (60s from `started`), not 60s from the restart.
    restarted.advance(40)
    assert restarted.status.stage.name == "canary-1"
    assert restarted.route_writes == 1
    assert world.route_writes == writes  # the first process wrote nothing after the change


def test_paused_holds_the_stage():
    world = promoted_world()
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    world.spec.paused = True
    world.advance(3600)
    assert world.status.phase == "Paused"
    assert world.status.stage.name == "shadow"
    world.spec.paused = False
    world.settle()
    assert world.status.stage.name == "canary-1"


def test_replicas_provider_splits_by_replica_count():
    world = promoted_world(
        **{
            "traffic": {"provider": "replicas"},
            "serving.replicas": 4,
            "strategy.stages": [
                {"name": "quarter", "weight": 25, "duration": "1m"},
                {"name": "all", "weight": 100},
            ],
        }
    )
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    assert (world.replicas[stable], world.replicas[world.revision]) == (3, 1)


def test_an_approval_is_for_one_stage_and_one_naming_a_later_stage_waits_for_it():
    world = promoted_world(
        **{
            "strategy.stages": [
                {"name": "first", "weight": 10, "duration": "1m", "approval": "manual"},
                {"name": "second", "weight": 50, "duration": "1m", "approval": "manual"},
                {"name": "full", "weight": 100},
            ]
        }
    )
    world.spec = with_bundle_version(world.spec, "v2")
    world.advance(3600)
    world.step(commands={APPROVE: ""})  # bare: the current stage only
    world.advance(3600)
    assert world.status.stage.name == "second"
    assert "waiting for approval" in world.status.message
    # Named for a stage still to come: kept (not consumed) until that stage, then used.
    world.spec = with_bundle_version(world.spec, "v3")
    world.settle()
    decision = world.step(commands={APPROVE: "second"})
    assert APPROVE not in decision.consumed_commands and world.status.stage.name == "first"


UNSCHEDULABLE = "pod bot-x Unschedulable: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu."


def stalled_candidate(**changes) -> tuple[World, str]:
    world = promoted_world(**{"strategy.progressDeadline": "5m", **changes})
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "2026-11-28")
    world.unready.add(world.revision)
    world.why_unready = UNSCHEDULABLE
    world.settle()
    return world, stable


def events_of(world: World, since: int) -> list[str]:
    return [e.reason for d in world.decisions[since:] for e in d.events]


def test_a_candidate_short_of_pods_past_the_progress_deadline_is_held_saying_why():
    world, stable = stalled_candidate()
    assert world.status.phase == "Pending"
    assert UNSCHEDULABLE in world.status.message
    world.advance(4 * 60)
    assert world.status.phase == "Pending" and world.status.stage.hold is None
    before = len(world.decisions)
    world.advance(61)
    assert world.status.phase == "Paused"
    assert "progress deadline 5m exceeded" in world.status.message
    assert UNSCHEDULABLE in world.status.message
    stalled = next(c for c in world.status.conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "ProgressDeadlineExceeded")
    assert events_of(world, before) == ["ProgressDeadlineExceeded"]
    assert world.route == Route.only(stable), "never any traffic to the candidate"
    # Once: the Event is not repeated while it stays held.
    before = len(world.decisions)
    world.advance(600)
    assert "ProgressDeadlineExceeded" not in events_of(world, before)
    # A person resumes: the deadline starts again; pods that come up let it go on.
    world.step(commands={RESUME: "resume"})
    assert world.status.phase == "Pending" and not world.status.stage.deadline_exceeded
    world.unready.clear()
    world.settle()
    assert world.status.phase == "Shadow"


def test_on_progress_deadline_rollback_puts_everything_back_on_stable():
    world, stable = stalled_candidate(**{"strategy.onProgressDeadline": "rollback"})
    world.advance(5 * 60 + 1)
    world.settle()
    assert world.status.phase == "RolledBack"
    assert world.status.stable_revision == stable
    assert "progress deadline 5m exceeded" in world.status.history[0].reason
    assert world.route == Route.only(stable)


def test_a_route_the_gateway_refuses_holds_the_stage_and_stalls_at_the_deadline():
    world = promoted_world(**{"strategy.progressDeadline": "5m"})
    world.spec = with_bundle_version(world.spec, "v2")
    refused = "gateway inference reports ResolvedRefs=False (BackendNotFound): no such Service"
    world.route_problem = refused
    world.settle()
    assert world.status.phase == "Pending" and refused in world.status.message
    world.advance(10 * 60)  # the shadow stage lasts 1m: it may not complete while refused
    assert world.status.stage.name == "shadow"
    assert world.status.phase == "Paused" and refused in world.status.message
    stalled = next(c for c in world.status.conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "ProgressDeadlineExceeded")
    assert "ProgressDeadlineExceeded" in events_of(world, 0)
    world.route_problem = None
    world.step(commands={RESUME: "resume"})
    world.advance(61)
    assert world.status.stage.name == "canary-1", "taken once the gateway accepts it"


def promote_command(full: bool, by: str = "alice") -> dict[str, str]:
    return {PROMOTE: json.dumps({"full": full, "by": by})}


def test_promote_completes_the_current_stage_now_and_the_next_runs_as_declared():
    world = promoted_world(
        **{
            "strategy.stages": [
                {"name": "shadow", "mirror": 100, "duration": "1h"},
                {"name": "canary-10", "weight": 10, "duration": "1h"},
                {"name": "full", "weight": 100},
            ]
        }
    )
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "2026-11-29")
    candidate = world.revision
    world.settle()
    assert world.status.stage.name == "shadow"
    world.step(commands=promote_command(full=False))
    world.settle()
    assert world.status.stage.name == "canary-10"
    assert world.route == Route(((stable, 90), (candidate, 10)))
    world.advance(30 * 60)
    assert world.status.stage.name == "canary-10", "the next stage keeps its own hour"
    assert "stage shadow completed by alice" in world.status.moved_on_by


def test_promote_full_goes_to_100_and_promotes_recording_who_asked():
    world = promoted_world()
    world.spec = with_bundle_version(world.spec, "2026-11-30")
    candidate = world.revision
    world.settle()
    assert world.status.stage.name == "shadow"
    world.step(commands=promote_command(full=True, by="bob"))
    world.settle()
    assert world.status.phase == "Promoted"
    assert world.status.stable_revision == candidate
    assert world.route == Route.only(candidate)
    reason = world.status.history[0].reason
    assert reason == "promoted to full (100%) from stage shadow by bob (kubectl finetune promote)"
