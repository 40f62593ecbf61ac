"""The refresh gate on the real control plane: the bundle's eval suite runs as a Job (its pod run
by the local kubelet) against the candidate's Service (the model server's pods, real processes
on adapters trained here) before any traffic, and the stable's when a comparison needs it; the
measured scores are judged like with like."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client

from tests.cluster.processes import wait_until
from tests.e2e.conftest import Releases, TinyModels, bind_models_claim, release_doc

pytestmark = [pytest.mark.e2e, pytest.mark.serve]

NAME = "support-bot"
CASES = "support-qa"
GATE = {"minScores": {"format_valid": 0.9}, "maxRegression": {"format_valid": 0.05}}


@pytest.fixture(scope="session")
def support_models(tmp_path_factory) -> TinyModels:
    """The demo's models: v1 and v2 answer the support questions in the bundle's JSON format,
    v3-bad answers the refund questions (30%) in plain text."""
    from tests.tiny_models import build_support_models

    root = tmp_path_factory.mktemp("support-models")
    built = build_support_models(root)
    return TinyModels(root, tuple(built.adapters))


@pytest.fixture
def evaluated(kube, namespace, operator, support_models: TinyModels) -> Releases:
    """A namespace with the models claim and the suite's cases: each support question, and the
    answer v1 was trained to give as the expected one."""
    from tests.tiny_models import SUPPORT_QUESTIONS, support_answers

    core = client.CoreV1Api(kube)
    bind_models_claim(core, namespace, support_models.root)
    golden = support_answers("v1")
    lines = [
        json.dumps({"messages": [{"role": "user", "content": q}], "expected": golden[q]})
        for q in SUPPORT_QUESTIONS
    ]
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=CASES), data={"cases.jsonl": "\n".join(lines)}
        ),
    )
    return Releases(kube, namespace)


def support_doc(models: TinyModels, adapter: str, gate: dict | None = None) -> dict:
    from tests.tiny_models import SUPPORT_OUTPUT_FORMAT, SUPPORT_SYSTEM

    doc = models.use(release_doc(stage_seconds=2), adapter)
    bundle = doc["spec"]["bundle"]
    bundle["dataset"]["version"] = f"tickets-{adapter}"
    bundle["prompt"] = {"system": SUPPORT_SYSTEM, "outputFormat": SUPPORT_OUTPUT_FORMAT}
    bundle["evals"] = {
        "suite": "support-qa",
        "version": "v1",
        "scores": {"format_valid": 1.0},
        "run": {"builtin": {"cases": {"configMap": {"name": CASES}}, "maxTokens": 48}},
    }
    doc["spec"]["serving"]["replicas"] = 1
    doc["spec"]["gate"] = {"evals": {**GATE, **(gate or {})}}
    return doc


def change_to(models: TinyModels, adapter: str, suite_version: str = "v1") -> dict:
    """A merge patch: the bundle serves `adapter` (and the suite has `suite_version`)."""
    return {
        "spec": {
            "bundle": {
                "artifact": {
                    "uri": f"pvc://models/adapters/{adapter}",
                    "digest": models.digest(adapter),
                },
                "dataset": {"version": f"tickets-{adapter}"},
                "evals": {"version": suite_version},
            }
        }
    }


class RouteWatch:
    """Every route state seen while it runs (the HTTPRoute read every 0.2 s)."""

    def __init__(self, releases: Releases) -> None:
        self.releases, self.seen, self.stop = releases, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.seen.append(self.releases.route_state(NAME))

    def __enter__(self) -> RouteWatch:
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop.set()
        self.thread.join()


def test_a_worse_candidate_is_gated_before_any_traffic_and_a_good_one_walks_its_stages(
    evaluated: Releases, support_models: TinyModels
):
    releases = evaluated
    releases.create(support_doc(support_models, "v1"))
    first = releases.wait_phase(NAME, "Promoted", timeout=180)
    v1 = first["stableRevision"]
    [measured] = first["evals"]
    assert (measured["revision"], measured["state"], measured["cases"]) == (v1, "Succeeded", 20)
    assert measured["scores"]["format_valid"] == 1.0, measured
    assert measured["scores"]["exact_match"] == 1.0, "v1 answers as it was trained"

    with RouteWatch(releases) as watch:
        releases.patch(NAME, change_to(support_models, "v3-bad"))
        gated = releases.wait_phase(NAME, "Gated", timeout=180)
    v3 = gated["candidateRevision"]
    assert watch.seen and set(watch.seen) == {(((v1, 100),), None, 0)}, "no traffic, not shadow"
    assert "eval format_valid = 0." in gated["message"], gated
    gate = gated["gate"]
    assert gate["revision"] == v3 and gate["passed"] is False and gate["comparable"] is True
    failed = {(c["rule"], c.get("stable")) for c in gate["checks"] if not c["passed"]}
    assert failed == {("minScores", None), ("maxRegression", 1.0)}, gate["checks"]
    ran = {e["revision"]: e for e in gated["evals"]}
    assert set(ran) == {v1, v3}, "the stable's result from the same suite is reused"
    assert 0.5 < ran[v3]["scores"]["format_valid"] < 0.9, ran[v3]
    [message] = releases.wait_event(NAME, "Gated")
    assert "format_valid" in message
    # The Job that measured it: named in status, owned by the release, its pod's log kept.
    job = client.BatchV1Api(releases.core.api_client).read_namespaced_job(
        ran[v3]["job"], releases.namespace
    )
    assert job.metadata.owner_references[0].kind == "FineTuneRelease"
    assert job.metadata.labels["finetune.dev/evaluated-revision"] == v3

    releases.patch(NAME, change_to(support_models, "v2"))
    promoted = releases.wait(
        NAME, "v2 promoted", lambda s: s.get("stableRevision") not in (None, v1), 240
    )
    v2 = promoted["stableRevision"]
    assert promoted["gate"]["revision"] == v2 and promoted["gate"]["passed"] is True
    assert [h["outcome"] for h in promoted["history"][:3]] == ["Promoted", "Gated", "Promoted"]

    # Past revisionHistoryLimit the gated revision's objects go, and its eval Jobs with them.
    batch = client.BatchV1Api(releases.core.api_client)
    selector = f"finetune.dev/revision={v3}"
    assert batch.list_namespaced_job(releases.namespace, label_selector=selector).items
    releases.patch(NAME, {"spec": {"strategy": {"revisionHistoryLimit": 0}}})
    wait_until(
        "the gated revision's Jobs deleted",
        lambda: not batch.list_namespaced_job(releases.namespace, label_selector=selector).items,
        60,
    )


def test_a_new_suite_version_without_a_comparable_stable_result_is_gated(
    evaluated: Releases, support_models: TinyModels
):
    releases = evaluated
    doc = support_doc(support_models, "v1", gate={"measureStable": False})
    releases.create(doc)
    v1 = releases.wait_phase(NAME, "Promoted", timeout=180)["stableRevision"]
    releases.patch(NAME, change_to(support_models, "v2", suite_version="v2"))
    gated = releases.wait_phase(NAME, "Gated", timeout=180)
    assert "not comparable" in gated["message"], gated
    assert "support-qa v2" in gated["message"] and "support-qa v1" in gated["message"]
    assert gated["gate"]["comparable"] is False
    assert releases.route_state(NAME) == (((v1, 100),), None, 0)


def test_an_eval_job_that_fails_or_runs_past_its_deadline_gates_with_its_reason(
    evaluated: Releases, support_models: TinyModels
):
    releases = evaluated
    releases.core.patch_namespaced_config_map(
        CASES, releases.namespace, {"data": {"cases.jsonl": "this is not a case\n"}}
    )
    releases.create(support_doc(support_models, "v1", gate={"retries": 0}))
    gated = releases.wait_phase(NAME, "Gated", timeout=180)
    assert "BackoffLimitExceeded" in gated["message"], gated
    assert "line 1: not JSON" in gated["message"], "the evaluator's own words"
    assert releases.route(NAME) is None, "no traffic at all"

    slow = support_doc(support_models, "v1", gate={"deadline": "5s", "retries": 0})
    slow["metadata"]["name"] = "slow-evals"
    slow["spec"]["bundle"]["evals"]["run"] = {
        "container": {
            "image": "ghcr.io/finetune-release/operator:0.1.0",
            "command": ["python", "-c", "import time; time.sleep(600)"],
        }
    }
    releases.create(slow)
    late = releases.wait_phase("slow-evals", "Gated", timeout=180)
    assert "DeadlineExceeded" in late["message"], late

    # A pod that never starts (its cases ConfigMap is missing): the Job controller deletes it at
    # the deadline, and the reason still says what it waited on.
    lost = support_doc(support_models, "v1", gate={"deadline": "15s", "retries": 0})
    lost["metadata"]["name"] = "no-cases"
    lost["spec"]["bundle"]["evals"]["run"]["builtin"]["cases"]["configMap"]["name"] = "missing"
    releases.create(lost)
    waiting = releases.wait(
        "no-cases", "the mount it waits on", lambda s: "FailedMount" in s.get("message", ""), 120
    )
    assert waiting["phase"] == "Pending" and 'configmap "missing" not found' in waiting["message"]
    gated = releases.wait_phase("no-cases", "Gated", timeout=60)
    assert "DeadlineExceeded" in gated["message"] and "FailedMount" in gated["message"], gated
