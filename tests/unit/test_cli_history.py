"""kubectl finetune history and diff on the status a real lifecycle leaves (run on the in-memory
world): the bundle fields each rollout changed, field-level diffs with a prompt as a text diff,
and what applying a file would do."""

from __future__ import annotations

import copy
from typing import Any

from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.cli.history import apply_plan, field_diff, history_rows, known_bundles, resolve

from tests.api_cases import load_example
from tests.unit.rollout_world import World, spec_with, with_bundle_version

PROMPT = "You are the support assistant.\nAnswer from the knowledge base.\nBe brief."


def with_prompt(spec: FineTuneReleaseSpec, system: str) -> FineTuneReleaseSpec:
    changed = copy.deepcopy(spec)
    changed.bundle.prompt.system = system
    return FineTuneReleaseSpec.model_validate(changed.to_wire())


def body(world: World) -> dict[str, Any]:
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneRelease",
        "metadata": {"name": world.name, "namespace": world.namespace},
        "spec": world.spec.to_wire(),
        "status": world.status.to_wire(),
    }


def rolled_out(world: World, spec: FineTuneReleaseSpec) -> str:
    world.spec = spec
    for _ in range(8):
        world.advance(61)
    assert world.status.phase == "Promoted"
    return world.revision


def test_a_prompt_only_change_shows_in_history_and_diff_as_the_prompt_lines_that_changed():
    world = World(spec_with(**{"bundle.prompt.system": PROMPT}))
    world.settle()
    first = world.revision
    second = rolled_out(world, with_prompt(world.spec, PROMPT.replace("Be brief.", "Be kind.")))
    third = rolled_out(world, with_bundle_version(world.spec, "2026-12-01"))

    rows = history_rows(body(world))
    assert [(r["revision"], r["changed"]) for r in rows] == [
        (third, "dataset.version"),
        (second, "prompt.system"),
        (first, "(first)"),
    ]
    assert rows[0]["endedBy"] == "the stages' analysis" and rows[0]["outcome"] == "Promoted"

    bundles = known_bundles(body(world))
    lines = field_diff(bundles[resolve(bundles, first[:6])], bundles[second], (first, second))
    assert lines[0] == "~ prompt.system:"
    assert "    -Be brief." in lines and "    +Be kind." in lines
    assert "    -Answer from the knowledge base." not in lines, "unchanged lines are context"
    assert all(not line.startswith(("~ ", "+ ", "- ")) for line in lines[1:]), lines


def test_diff_of_a_file_says_whether_it_would_roll_out_and_which_fields_cause_it():
    world = World(spec_with())
    world.settle()
    live = body(world)
    manifest = load_example()
    manifest["spec"] = world.spec.to_wire()

    rolls, lines = apply_plan(live, manifest)
    assert not rolls and lines[0].startswith("nothing would roll out")

    outside = copy.deepcopy(manifest)
    outside["spec"]["strategy"]["stages"][0]["duration"] = "5m"
    outside["spec"]["serving"]["replicas"] = 3
    rolls, lines = apply_plan(live, outside)
    assert not rolls
    assert (
        lines[-1]
        == "changes outside the bundle (no new revision): serving.replicas, strategy.stages"
    )

    prompt = copy.deepcopy(manifest)
    prompt["spec"]["bundle"]["prompt"]["system"] = "Say less."
    rolls, lines = apply_plan(live, prompt)
    assert rolls and lines[0].startswith("would start a new rollout")
    assert lines[1] == "bundle fields that change: prompt.system"
    assert lines[2].startswith("~ prompt.system: 'You are") and lines[2].endswith("-> 'Say less.'")

    rolls, lines = apply_plan(None, manifest)
    assert rolls and "does not exist" in lines[0]


def test_a_file_setting_the_bundle_back_to_a_retained_revision_is_a_rollback():
    world = World(spec_with())
    world.settle()
    manifest = load_example()
    manifest["spec"] = world.spec.to_wire()
    rolled_out(world, with_bundle_version(world.spec, "v2"))
    rolls, lines = apply_plan(body(world), manifest)
    assert rolls and lines[0].startswith("would roll back to retained revision")
