"""A pause by command is kept in status, so a GitOps sync of the unchanged manifest (which
says paused: false, or nothing) neither undoes it nor repeats it; spec.paused still pauses."""

from __future__ import annotations

import json

from ftrelease.rollout.commands import PAUSE, RESUME
from ftrelease.rollout.types import Route

from tests.unit.rollout_world import World, spec_with, with_bundle_version


def command(by: str, reason: str = "") -> str:
    return json.dumps({"by": by, "reason": reason})


def in_shadow() -> tuple[World, str, str]:
    world = World(spec_with())
    world.settle()
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    assert world.status.phase == "Shadow"
    return world, stable, world.revision


def test_a_pause_by_command_holds_through_a_sync_of_the_manifest_until_resumed():
    world, stable, _ = in_shadow()
    route = world.route
    decision = world.step(commands={PAUSE: command("alice", "checking answers")})
    assert [e.reason for e in decision.events] == ["Paused"]
    assert "by alice (kubectl finetune pause: checking answers)" in decision.events[0].message
    assert world.spec.paused is False, "the spec is not touched"
    world.advance(3600)
    # What Git says, applied again: the same spec, paused false.
    world.spec = world.spec.model_copy(deep=True)
    world.advance(3600)
    assert world.status.phase == "Paused" and world.status.stage.name == "shadow"
    assert "paused in stage shadow by alice: checking answers" in world.status.message
    assert world.route == route
    decision = world.step(commands={RESUME: command("bob")})
    assert [e.reason for e in decision.events].count("Resumed") == 1
    assert world.status.paused_by is None
    world.advance(61)
    assert world.status.stage.name == "canary-1"
    assert Route.only(stable) != world.route


def test_a_pause_while_nothing_rolls_out_holds_the_next_bundle_at_its_first_stage():
    world = World(spec_with())
    world.settle()
    world.step(commands={PAUSE: command("alice", "change freeze")})
    world.spec = with_bundle_version(world.spec, "v2")
    world.advance(3600)
    assert world.status.phase == "Paused" and world.status.stage.started_at is None
    assert world.route == Route.only(world.status.stable_revision)


def test_spec_paused_from_git_still_pauses_and_a_resume_command_says_where_it_is_set():
    world, _, _ = in_shadow()
    world.spec.paused = True
    world.advance(3600)
    assert world.status.phase == "Paused" and "set spec.paused=false" in world.status.message
    decision = world.step(commands={RESUME: command("bob")})
    [ignored] = [e for e in decision.events if e.reason == "CommandIgnored"]
    assert "spec.paused is true in the manifest" in ignored.message
    assert world.status.phase == "Paused"
