"""kubectl finetune evals: declared against measured, candidate and stable, and the verdict."""

from __future__ import annotations

from ftrelease.cli.evals import evals_view, verdict_line

from tests.unit.test_eval_run import evaluated_world, new_bundle


def test_the_view_sets_declared_and_measured_side_by_side_with_the_rules():
    world, evaluator = evaluated_world()
    stable = world.status.stable_revision
    candidate = new_bundle(world)
    evaluator.scores[candidate] = {"format_valid": 0.95, "exact_match": 0.6}
    world.settle()
    body = {"spec": world.spec.to_wire(), "status": world.status.to_wire()}
    view = evals_view(body)
    rows = {row["score"]: row for row in view["scores"]}
    assert rows["exact_match"]["candidateMeasured"] == 0.6
    assert rows["exact_match"]["stableMeasured"] == 0.8
    assert rows["exact_match"]["rules"] == [
        {"rule": "maxRegression", "limit": 0.05, "passed": False}
    ]
    declared = world.spec.bundle.evals.scores
    assert {n: r["candidateDeclared"] for n, r in rows.items() if n in declared} == declared
    assert rows["format_valid"]["rules"][0]["passed"] is True
    assert {run["revision"] for run in view["runs"]} == {stable, candidate}
    line = verdict_line(view["gate"])
    assert line.startswith(f"GATED: revision {candidate} (measured on support-evals v3; against")
    assert "exact_match = 0.6 regresses" in line


def test_a_release_never_gated_says_so():
    assert evals_view({"status": {}}) == {"gate": None, "scores": [], "runs": []}


def test_status_names_the_score_that_gated_the_candidate():
    from ftrelease.cli.status import release_view
    from rich.console import Console

    world, evaluator = evaluated_world()
    candidate = new_bundle(world)
    evaluator.scores[candidate] = {"format_valid": 0.5, "exact_match": 0.8}
    world.settle()
    body = {"metadata": {"name": "bot"}, "spec": {}, "status": world.status.to_wire()}
    console = Console(width=300, record=True)
    console.print(release_view(body, world.now))
    shown = console.export_text()
    assert "phase Gated" in shown
    assert "eval gate GATED (measured, support-evals v3): eval format_valid = 0.5 is below" in shown
