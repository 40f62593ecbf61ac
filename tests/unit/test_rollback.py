"""Rollback by command (kubectl finetune rollback [--to]), the previous stable kept warm for it,
and the Event every command leaves, driven through whole lifecycles on the in-memory world."""

from __future__ import annotations

from ftrelease.rollout.commands import (
    ABORT,
    APPROVE,
    PAUSE,
    PROMOTE,
    RESUME,
    RETRY,
    ROLLBACK,
    encode,
)
from ftrelease.rollout.types import Route

from tests.unit.rollout_world import World, spec_with, with_bundle_version

HOUR = 3600


def promoted(world: World, version: str) -> str:
    """Rolls `version` out through every stage; its revision."""
    world.spec = with_bundle_version(world.spec, version)
    for _ in range(8):
        world.advance(61)
    assert world.status.phase == "Promoted" and world.status.stable_revision == world.revision
    return world.revision


def three_revisions() -> tuple[World, str, str, str]:
    world = World(spec_with())
    world.settle()
    v1 = world.revision
    v2 = promoted(world, "v2")
    v3 = promoted(world, "v3")
    return world, v1, v2, v3


def rollback(world: World, to: str = "", by: str = "alice", reason: str = "bad answers"):
    return world.step(commands={ROLLBACK: encode(by, reason, to=to)})


def events(world: World) -> list[tuple[str, str, str]]:
    return [(e.type, e.reason, e.message) for d in world.decisions for e in d.events]


def test_rollback_after_promotion_moves_all_traffic_to_the_warm_previous_stable_at_once():
    world, _, v2, v3 = three_revisions()
    world.advance(2 * HOUR)  # past scaleDownDelay: v2 keeps one pod (keepPreviousStable)
    assert world.replicas[v2] == 1
    writes = world.route_writes
    decision = rollback(world)
    assert world.route == Route.only(v2), "one route write, in the decision that got the command"
    assert world.route_writes == writes + 1
    assert decision.consumed_commands == [ROLLBACK]
    assert world.replicas[v2] == 2, "scaled back up to serving.replicas at the same time"
    world.settle()
    st = world.status
    assert (st.phase, st.stable_revision, st.candidate_revision) == ("RolledBack", v2, v3)
    assert f"spec bundle (revision {v3}) is rolled back" in st.message
    assert "kubectl finetune retry" in st.message and "apply a new bundle" in st.message
    conditions = {c.type: (c.status, c.reason) for c in st.conditions}
    assert conditions["Ready"] == ("False", "RolledBack")
    assert conditions["Stalled"] == ("True", "RolledBack")
    said = "by alice (kubectl finetune rollback: bad answers)"
    assert ("Normal", "RollbackStarted", f"rolling back from {v3} to {v2} {said}") in events(world)
    assert st.history[0].revision == v3 and st.history[0].outcome == "RolledBack"
    assert st.history[0].ended_by == "alice"
    # v3 is now the previous stable, kept warm: a second rollback undoes the first.
    assert world.replicas[v3] == 2
    assert st.retired[0].revision == v3 and st.retired[0].role == "stable"

    # The unchanged spec applied again (a GitOps sync) rolls nothing out.
    writes = world.route_writes
    world.advance(600)
    assert (world.status.phase, world.route, world.route_writes) == (
        "RolledBack",
        Route.only(v2),
        writes,
    )
    assert world.status.stage is None

    # retry: v3 goes through its stages again, against v2.
    world.step(commands={RETRY: encode("bob", "prompt fixed upstream")})
    world.settle()
    assert world.status.phase == "Shadow" and world.status.stage.name == "shadow"
    assert world.status.started_by == "bob"
    assert world.route == Route(((v2, 100), (v3, 0)), v3, 100)


def test_rollback_to_an_older_cold_revision_waits_for_its_pods_then_flips_once():
    world, v1, _, v3 = three_revisions()
    world.advance(30 * HOUR)  # past keepPreviousStable: every retained revision is cold
    assert world.replicas[v1] == 0
    world.unready.add(v1)
    rollback(world, to=v1)
    assert world.route == Route.only(v3), "traffic stays until the target has its pods"
    assert world.replicas[v1] == 2
    assert world.status.phase == "Pending" and "0 of the 2 ready pods" in world.status.message
    world.advance(30)
    assert world.route == Route.only(v3)
    world.unready.clear()
    writes = world.route_writes
    world.advance(1)
    assert world.route == Route.only(v1) and world.route_writes == writes + 1
    assert world.status.stable_revision == v1 and world.status.phase == "RolledBack"


def test_a_rollback_whose_target_never_gets_its_pods_is_given_up_at_the_progress_deadline():
    world, v1, _, v3 = three_revisions()
    world.advance(30 * HOUR)
    world.unready.add(v1)
    world.why_unready = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
    rollback(world, to=v1)
    world.advance(11 * 60)
    assert world.route == Route.only(v3)
    assert world.status.rolling_back_to is None
    assert "Insufficient nvidia.com/gpu" in world.status.message
    assert any(r == "RollbackFailed" for _, r, _ in events(world))


def test_rollback_during_a_rollout_is_an_abort_and_names_who_asked():
    world = World(spec_with())
    world.settle()
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    world.advance(61)
    candidate = world.revision
    rollback(world, reason="")
    assert world.route == Route.only(stable)
    assert world.status.phase == "RolledBack" and world.status.candidate_revision == candidate
    assert world.status.history[0].reason == "rolled back by alice (kubectl finetune rollback)"


def test_a_rollback_with_nowhere_to_go_is_refused_with_an_event_and_changes_nothing():
    world = World(spec_with())
    world.settle()
    before = world.status.model_copy(deep=True)
    decision = rollback(world)
    assert decision.consumed_commands == [ROLLBACK]
    [(kind, reason, message)] = events(world)[-1:]
    assert (kind, reason) == ("Warning", "RollbackRefused")
    assert "no previous stable revision is retained" in message and "alice" in message
    assert world.status.phase == before.phase and world.status.history == before.history

    world, _, _, v3 = three_revisions()
    rollback(world, to="0123456789")
    [(kind, reason, message)] = events(world)[-1:]
    assert reason == "RollbackRefused" and "revision 0123456789 is not retained" in message
    assert world.route == Route.only(v3)


def test_abort_on_a_promoted_release_is_never_a_silent_no_op():
    world, _, _, v3 = three_revisions()
    writes = world.route_writes
    decision = world.step(commands={ABORT: encode("carol", "pager")})
    assert decision.consumed_commands == [ABORT]
    [(kind, reason, message)] = events(world)[-1:]
    assert (kind, reason) == ("Warning", "CommandIgnored")
    assert "kubectl finetune rollback" in message and "carol" in message and "pager" in message
    assert world.route_writes == writes and world.status.stable_revision == v3


def test_every_command_leaves_an_event_with_the_user_and_the_reason():
    world = World(
        spec_with(
            **{
                "strategy.stages": [
                    {"name": "shadow", "mirror": 100, "duration": "1m"},
                    {"name": "canary", "weight": 10, "duration": "1m", "approval": "manual"},
                    {"name": "wide", "weight": 50, "duration": "1m"},
                    {"name": "full", "weight": 100, "duration": "1m"},
                ]
            }
        )
    )
    world.settle()
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    for annotation in (PAUSE, RESUME, PROMOTE, APPROVE, PROMOTE, ABORT, RETRY, ROLLBACK):
        before = len(events(world))
        world.step(commands={annotation: encode("dave", f"why {annotation}")})
        said = f"by dave (kubectl finetune {annotation.split('/')[-1]}: why {annotation})"
        new = [message for _, _, message in events(world)[before:]]
        assert any(said in message for message in new), (annotation, new)
        world.advance(61)


def test_the_replicas_provider_keeps_no_previous_stable_warm():
    world = World(
        spec_with(
            **{
                "traffic": {"provider": "replicas"},
                "serving.replicas": 4,
                "strategy.stages": [{"name": "full", "weight": 100, "duration": "1m"}],
            }
        )
    )
    world.settle()
    v1 = world.revision
    promoted(world, "v2")
    world.advance(601)
    assert world.replicas[v1] == 0, "a kept pod behind the shared Service would take traffic"
