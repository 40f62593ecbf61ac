"""The eval gate in the rollout (rollout.evaluation), on the in-memory world: the suite is
measured on the candidate (and the stable when a comparison needs it) before any traffic."""

from __future__ import annotations

import copy
import json

import pytest
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.rollout.commands import RETRY
from ftrelease.rollout.types import EvalJobPlan, ObservedJob, Route

from tests.unit.rollout_world import World, spec_with, with_bundle_version

RUN = {"builtin": {"cases": {"configMap": {"name": "qa"}}}}
GATE = {"minScores": {"format_valid": 0.9}, "maxRegression": {"exact_match": 0.05}}


class Evaluator:
    """Ends each eval Job with the scores set for the revision it measures."""

    def __init__(self) -> None:
        self.scores: dict[str, dict[str, float]] = {}
        self.default = {"format_valid": 1.0, "exact_match": 0.8}
        self.plans: list[EvalJobPlan] = []
        self.fail: str | None = None

    def __call__(self, plan: EvalJobPlan) -> tuple[str, str]:
        self.plans.append(plan)
        if self.fail:
            return "Failed", self.fail
        scores = self.scores.get(plan.target, self.default)
        return "Succeeded", json.dumps({"scores": scores, "cases": 40})


def evaluated_world(**gate) -> tuple[World, Evaluator]:
    evaluator = Evaluator()
    world = World(spec_with(**{"bundle.evals.run": RUN, "gate.evals": {**GATE, **gate}}))
    world.evaluator = evaluator
    world.settle()
    assert world.status.phase == "Promoted", world.status.message
    return world, evaluator


def new_bundle(world: World, suite_version: str | None = None) -> str:
    spec = with_bundle_version(world.spec, "2026-12-01")
    if suite_version:
        spec = copy.deepcopy(spec)
        spec.bundle.evals.version = suite_version
        spec = FineTuneReleaseSpec.model_validate(spec.to_wire())
    world.spec = spec
    return world.revision


def test_the_first_release_is_measured_before_it_takes_traffic():
    world = World(spec_with(**{"bundle.evals.run": RUN, "gate.evals": GATE}))
    world.step()
    world.step()
    assert world.status.phase == "Pending" and world.route is None
    assert "measuring" in (world.status.message or "")
    [job] = world.jobs.values()
    assert job.state == "Running" and job.name.endswith(f"-{world.revision}-1")
    world.end_job(job.name, "Succeeded", json.dumps({"scores": {"format_valid": 0.95}}))
    world.settle()
    assert world.status.phase == "Promoted" and world.route == Route.only(world.revision)
    [result] = world.status.evals
    assert (result.revision, result.state, result.scores) == (
        world.revision,
        "Succeeded",
        {"format_valid": 0.95},
    )


def test_a_candidate_that_answers_worse_is_gated_before_any_traffic_even_shadow():
    world, evaluator = evaluated_world()
    stable = world.status.stable_revision
    candidate = new_bundle(world)
    evaluator.scores[candidate] = {"format_valid": 1.0, "exact_match": 0.6}
    routes = []
    for _ in range(8):
        world.step()
        routes.append(world.route)
    assert world.status.phase == "Gated"
    assert "exact_match = 0.6 regresses 0.2 from stable's 0.8" in world.status.message
    assert all(route == Route.only(stable) for route in routes), (
        "no traffic at all, not even shadow"
    )
    # The stable's result from its own rollout (same suite and version) is reused: one new Job.
    assert [p.target for p in evaluator.plans] == [stable, candidate]
    gate = world.status.gate
    assert gate.passed is False and gate.comparable is True
    assert [(c.score, c.candidate, c.stable, c.passed) for c in gate.checks] == [
        ("format_valid", 1.0, None, True),
        ("exact_match", 0.6, 0.8, False),
    ]
    assert world.status.retired[0].revision == candidate, "brought up for its evals, retired"
    assert world.status.history[0].outcome == "Gated"


def test_a_candidate_that_passes_walks_its_stages_from_shadow():
    world, evaluator = evaluated_world()
    candidate = new_bundle(world)
    evaluator.scores[candidate] = {"format_valid": 0.97, "exact_match": 0.78}
    world.settle()
    assert world.status.gate.passed is True
    assert world.status.phase == "Shadow"
    for _ in range(5):
        world.advance(61)
    assert world.status.stable_revision == candidate


def test_a_new_suite_version_is_measured_on_the_stable_too():
    world, evaluator = evaluated_world()
    stable = world.status.stable_revision
    candidate = new_bundle(world, suite_version="v4")
    world.settle()
    measured = [(p.target, p.bundle.evals.version) for p in evaluator.plans[1:]]
    assert measured == [(candidate, "v4"), (stable, "v4")]
    assert world.status.gate.passed is True and world.status.phase == "Shadow"


def test_without_measuring_the_stable_a_new_suite_version_is_gated_as_not_comparable():
    world, evaluator = evaluated_world(measureStable=False)
    new_bundle(world, suite_version="v4")
    world.settle()
    assert world.status.phase == "Gated"
    assert "not comparable" in world.status.message and "v4" in world.status.message
    assert world.status.gate.comparable is False
    assert len(evaluator.plans) == 2, "the stable was not measured again"


def test_a_failed_eval_job_gates_with_its_reason_and_a_retry_measures_again():
    world, evaluator = evaluated_world()
    candidate = new_bundle(world)
    evaluator.fail = "DeadlineExceeded: Job was active longer than specified deadline"
    world.settle()
    assert world.status.phase == "Gated"
    assert "failed: DeadlineExceeded" in world.status.message
    assert world.route == Route.only(world.status.stable_revision)
    evaluator.fail = None
    world.step(commands={RETRY: json.dumps({"by": "oncall"})})
    world.settle()
    assert evaluator.plans[-1].name.endswith(f"-{candidate}-eval-{candidate}-2")
    assert world.status.gate.attempt == 2 and world.status.phase == "Shadow"


def test_a_running_job_holds_the_candidate_without_traffic():
    world, _ = evaluated_world()
    stable = world.status.stable_revision
    world.evaluator = None
    candidate = new_bundle(world)
    for _ in range(3):
        world.advance(60)
    assert world.status.phase == "Pending" and world.route == Route.only(stable)
    name = next(n for n in world.jobs if n.endswith(f"eval-{candidate}-1"))
    assert f"kubectl logs job/{name}" in world.status.message
    world.end_job(name, "Succeeded", json.dumps({"scores": {"format_valid": 1, "exact_match": 1}}))
    world.settle()
    assert world.status.phase == "Shadow"


@pytest.mark.parametrize(
    ("result", "reason"),
    [("all good!", "unreadable"), ("", "left no result"), ('{"scores": {"x": "high"}}', "finite")],
)
def test_a_result_without_readable_scores_fails_closed(result, reason):
    world, _ = evaluated_world()
    world.evaluator = lambda plan: ("Succeeded", result)
    new_bundle(world)
    world.settle()
    assert world.status.phase == "Gated" and reason in world.status.message


def test_what_a_running_jobs_pod_waits_on_is_shown_and_kept_for_its_failure():
    world, _ = evaluated_world()
    world.evaluator = None
    candidate = new_bundle(world)
    world.settle()
    name = next(n for n in world.jobs if n.endswith(f"eval-{candidate}-1"))
    mount = (
        'pod x FailedMount: MountVolume.SetUp failed for volume "cases": configmap "qa" not found'
    )
    world.jobs[name] = ObservedJob(name, "Running", None, world.now, None, mount)
    world.advance(30)
    assert world.status.phase == "Pending" and mount in world.status.message
    # Past its deadline the Job controller deletes the pod: what it said is kept.
    world.jobs[name] = ObservedJob(name, "Running", None, world.now, None, None)
    world.advance(30)
    world.end_job(name, "Failed", "DeadlineExceeded: Job was active longer than specified deadline")
    world.settle()
    assert world.status.phase == "Gated"
    assert (
        f"DeadlineExceeded: Job was active longer than specified deadline; while it ran: {mount}"
        in (world.status.message)
    )
