"""Incident records of rollbacks by analysis: which rollbacks leave one (the planner), what a
record keeps and how it is bounded, and the JSON lines `kubectl finetune failures` exports."""

from __future__ import annotations

import json

from ftrelease.api.ownership import ReleaseRef
from ftrelease.cli.samples import asked, sides
from ftrelease.operator.incidents import (
    FLAGGED_LIMIT,
    INCIDENT_LABEL,
    SAMPLED_LIMIT,
    TEXT_LIMIT,
    failure_lines,
    incident_config_map,
    incident_document,
    records,
)
from ftrelease.operator.samples import RevisionSamples
from ftrelease.rollout.commands import ABORT

from tests.unit.rollout_world import Counted, World, spec_with, with_bundle_version

REF = ReleaseRef("support-bot", "ml", "uid-1")


def rolled_back(measure=None, commands=None) -> World:
    world = World(spec_with())
    world.settle()
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    if commands:
        world.step(commands=commands)
    for _ in range(8):
        world.advance(31, measure=measure)
        if world.status.phase == "RolledBack":
            break
    assert world.status.phase == "RolledBack"
    return world


def test_a_rollback_by_analysis_plans_a_record_with_its_reason_bundle_and_figures():
    world = rolled_back(measure=Counted(candidate_rate=0.5, rps=50))
    [decision] = [d for d in world.decisions if d.incident is not None]
    plan = decision.incident
    assert plan.revision == world.revision and plan.stable == world.status.stable_revision
    assert plan.reason == world.status.history[0].reason and plan.reason.startswith("errors")
    assert plan.bundle == world.spec.bundle
    assert {r.metric: r.outcome for r in plan.analysis}["errors"] == "Fail"
    assert plan.stage is not None and plan.stage.name == "shadow"


def test_an_abort_or_a_bundle_set_back_leaves_no_record():
    world = rolled_back(commands={ABORT: json.dumps({"by": "alice"})})
    assert all(d.incident is None for d in world.decisions)


def sample(pod: str, t: float, flags: list[str], text: str = "answer") -> dict:
    return {
        "pod": pod,
        "time": t,
        "messages": [{"role": "user", "content": "q"}],
        "response": text,
        "flags": flags,
    }


def test_a_record_keeps_flagged_outputs_first_then_sampled_ones_each_bounded_and_clipped():
    world = rolled_back(measure=Counted(candidate_rate=0.5, rps=50))
    plan = next(d.incident for d in world.decisions if d.incident)
    flagged = RevisionSamples(
        plan.revision,
        [sample("p1", 1000 - i, ["format_invalid"], "x" * (TEXT_LIMIT + 50)) for i in range(80)],
        pods=2,
        errors=["p2: HTTP 503 Service Unavailable"],
    )
    sampled = RevisionSamples(
        plan.revision,
        [sample("p1", 1000, ["format_invalid"])] + [sample("p1", 500 - i, []) for i in range(40)],
        pods=2,
    )
    document = incident_document(REF, plan, flagged, sampled)
    kept = document["samples"]
    assert len(kept) == FLAGGED_LIMIT + SAMPLED_LIMIT
    assert [s["flags"] for s in kept[:FLAGGED_LIMIT]] == [["format_invalid"]] * FLAGGED_LIMIT
    assert all(s["flags"] == [] for s in kept[FLAGGED_LIMIT:]), "a repeat is not kept twice"
    assert len(kept[0]["response"]) < TEXT_LIMIT + 10 and kept[0]["response"].endswith("[cut]")
    assert document["samplesFrom"] == {"pods": 2, "errors": ["p2: HTTP 503 Service Unavailable"]}
    assert document["bundle"]["dataset"]["version"] == "v2"

    config_map = incident_config_map(REF, plan, document)
    labels = config_map["metadata"]["labels"]
    assert labels[INCIDENT_LABEL] == "support-bot" and "finetune.dev/release" not in labels
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert len(json.dumps(config_map)) < 1_000_000, "within the apiserver's object limit"

    [back] = records([config_map, {"metadata": {"name": "other"}, "data": {}}])
    lines = list(failure_lines([back]))
    assert len(lines) == len(kept)
    assert lines[0]["incident"]["reason"] == plan.reason and lines[0]["label"] is None
    assert lines[0]["sample"] == kept[0] and "samples" not in lines[0]["incident"]


def test_a_record_without_outputs_is_still_one_line():
    world = rolled_back(measure=Counted(candidate_rate=0.5, rps=50))
    plan = next(d.incident for d in world.decisions if d.incident)
    empty = RevisionSamples(plan.revision, errors=["p1: HTTP 404 Not Found"])
    document = incident_document(REF, plan, empty, empty)
    [line] = list(failure_lines([document]))
    assert line["sample"] is None and line["incident"]["samplesFrom"]["errors"]


def test_samples_shows_the_candidate_beside_the_stable_while_one_rolls_out():
    rolling = {"status": {"phase": "Progressing", "stableRevision": "s", "candidateRevision": "c"}}
    assert sides(rolling, None) == [("candidate", "c"), ("stable", "s")]
    done = {"status": {"phase": "RolledBack", "stableRevision": "s", "candidateRevision": "c"}}
    assert sides(done, None) == [("stable", "s")]
    assert sides(done, "c") == [("revision", "c")]
    assert asked({"messages": [{"role": "user", "content": "a"}, {"role": "assistant"}]}) == "a"
    assert asked({"prompt": "p"}) == "p"
