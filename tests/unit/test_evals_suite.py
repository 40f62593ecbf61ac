"""The built-in evaluator's cases and scores (ftrelease.evals.suite), and its Job (pure)."""

from __future__ import annotations

import json

import pytest
from ftrelease.api.bundle import OutputFormat, Prompt
from ftrelease.api.ownership import ReleaseRef
from ftrelease.checks.output import RefusalDetector
from ftrelease.evals.suite import Answer, CasesProblem, read_cases, result_document, score
from ftrelease.rollout.evaluation import job_name, read_result
from ftrelease.rollout.types import EvalJobPlan
from ftrelease.serving.evaljob import eval_job

from tests.unit.rollout_world import spec_with

CASES = b"""{"messages": [{"role": "user", "content": "2+2?"}], "expected": "{\\"answer\\": 4}"}
{"prompt": "Capital of France:", "expected": "Paris."}

{"prompt": "Say something"}
"""


def test_cases_are_read_with_their_digest_and_bad_lines_are_named():
    cases, digest = read_cases(CASES)
    assert [c.line for c in cases] == [1, 2, 4] and digest.startswith("sha256:")
    for bad, problem in [
        (b"{}\n", "line 1: a case has exactly one of messages or prompt"),
        (b'{"prompt": "a"}\nnot json\n', "line 2: not JSON"),
        (b'{"messages": []}\n', "line 1: messages must be a non-empty list"),
        (b'{"prompt": "a", "expected": 4}\n', "line 1: expected must be a string"),
        (b"\n\n", "the suite has no cases"),
    ]:
        with pytest.raises(CasesProblem, match=problem):
            read_cases(bad)


def test_scores_use_the_shared_checks():
    cases, _ = read_cases(CASES)
    answers = [Answer('{"answer": 4}', 5), Answer("paris", 1), Answer("I'm sorry, no.", 3)]
    prompt = Prompt(output_format=OutputFormat(type="json"))
    assert score(cases, answers, prompt, RefusalDetector()) == {
        "format_valid": round(1 / 3, 6),
        "refusal_rate": round(1 / 3, 6),
        "mean_tokens": 3.0,
        "exact_match": 0.5,
        "normalized_match": 1.0,
    }


def test_the_result_document_is_what_the_gate_reads_back():
    text = result_document("qa", "v3", {"exact_match": 0.5}, 2, "sha256:ab")
    read = read_result(text, "other", "v0")
    assert (read.suite, read.version, read.scores, read.cases) == (
        "qa",
        "v3",
        {"exact_match": 0.5},
        2,
    )
    assert read_result('{"scores": {"a": 1}}', "qa", "v3").suite == "qa", "the bundle's by default"
    for bad in ("ok", '{"scores": [1]}', '{"scores": {"a": "high"}}', '{"scores": {"a": true}}'):
        with pytest.raises(ValueError):
            read_result(bad, "qa", "v3")


def test_the_eval_job_runs_the_candidates_suite_against_the_target_service():
    spec = spec_with(
        **{
            "bundle.evals.run": {"builtin": {"cases": {"uri": "pvc://models/evals/qa.jsonl"}}},
            "gate.evals": {"minScores": {"exact_match": 0.5}, "deadline": "5m", "retries": 2},
        }
    )
    ref = ReleaseRef("support-bot", "ml", "uid-1")
    name = job_name("support-bot", "cand123456", "stab123456", 1)
    job = eval_job(ref, spec, EvalJobPlan(name, "cand123456", "stab123456", 1, spec.bundle))
    assert len(name) <= 63 and job["metadata"]["name"] == name
    assert job["metadata"]["labels"]["finetune.dev/revision"] == "cand123456"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert (job["spec"]["activeDeadlineSeconds"], job["spec"]["backoffLimit"]) == (300, 2)
    pod = job["spec"]["template"]
    assert "finetune.dev/revision" not in pod["metadata"]["labels"], "no revision selects it"
    [container] = pod["spec"]["containers"]
    assert "--base-url=http://support-bot-stab123456.ml.svc:8000/v1" in container["args"]
    assert "--cases=/models/pvc-models/evals/qa.jsonl" in container["args"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["bundle"]["configMap"]["name"] == "support-bot-cand123456"
    assert volumes["pvc-models"]["persistentVolumeClaim"]["claimName"] == "models"


def test_your_own_evaluator_gets_the_target_in_its_environment():
    spec = spec_with(
        **{
            "bundle.evals.run": {
                "container": {"image": "registry.example/evals@sha256:" + "a" * 64, "args": ["--x"]}
            },
            "gate.evals": {"minScores": {"helpfulness": 0.5}},
        }
    )
    ref = ReleaseRef("bot", "ml", "u")
    job = eval_job(ref, spec, EvalJobPlan("bot-c-eval-c-1", "c", "c", 1, spec.bundle))
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["FINETUNE_EVAL_BASE_URL"] == "http://bot-c.ml.svc:8000/v1"
    assert env["FINETUNE_EVAL_MODEL"] == spec.bundle.routing.model_name
    assert container["args"] == ["--x"] and "command" not in container
    assert json.loads(json.dumps(job)) == job
