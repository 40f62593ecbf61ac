"""Analysis on real parts: the operator (with --prometheus-url) judges each stage from the real
Prometheus, which discovers through the apiserver the model-server pods the operator deployed
and the local kubelet runs (builtin runtime, tiny models); the gateway stand-in sends requests
split by the HTTPRoute's weights to the pods its EndpointSlices list. The servers' error rates
are set with their fault-injection flag, added by the local kubelet's fault injection (a real
2x error rate cannot be produced on demand)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.gateway import GatewayStandIn, chat
from tests.cluster.kubelet import FAULTS
from tests.cluster.localcluster import LocalCluster
from tests.cluster.localprometheus import LocalPrometheus
from tests.cluster.processes import wait_until
from tests.e2e.conftest import Releases, TinyModels, release_doc
from tests.e2e.test_on_call import cli
from tests.e2e.test_rollout import NAME, revision
from tests.operator_process import OperatorProcess

pytestmark = [pytest.mark.e2e, pytest.mark.serve]

RPS = 30
STABLE_ERRORS = 0.2
VERSIONS = {
    "stable": "2026-11-01",
    "healthy": "2026-11-02",
    "regressed": "2026-11-03",
    "json": "2026-11-04",  # asks for JSON, which the tiny model never writes
}
FAULTS_BY_ROLE = {role: STABLE_ERRORS for role in VERSIONS} | {"regressed": 2 * STABLE_ERRORS}
ANY_TEXT = {"type": "regex", "pattern": "(?s).*"}  # every answer is checked, and valid
EOS = 2  # the tiny tokenizer's </s> (tests/tiny_models.py: <pad>, <s>, </s>, <unk>)
MODELS: TinyModels | None = None  # the session's, set by the `served` fixture


def analysed_doc(version: str, canary_seconds: int, **analysis: Any) -> dict[str, Any]:
    assert MODELS is not None
    doc = MODELS.use(release_doc(), "a1")
    spec = doc["spec"]
    spec["bundle"]["dataset"]["version"] = version
    if version != VERSIONS["json"]:  # the example's prompt asks for JSON (a json-schema)
        spec["bundle"]["prompt"]["outputFormat"] = ANY_TEXT
    spec["serving"]["replicas"] = 1
    spec["strategy"]["stages"] = [
        {"name": "canary-50", "weight": 50, "duration": f"{canary_seconds}s"},
        {"name": "full", "weight": 100, "duration": "2s"},
    ]
    spec["strategy"]["analysis"] = {
        "interval": "3s",
        "alpha": 0.01,
        "minSamples": 40,
        "onError": {"after": "5m", "action": "pause"},
        "metrics": [{"name": "errors", "template": "error-rate", "margin": 0.1}],
        **analysis,
    }
    return doc


@pytest.fixture(scope="module")
def analysing_operator(
    operator: OperatorProcess, prometheus: LocalPrometheus
) -> Iterator[OperatorProcess]:
    """The session's operator, restarted with --prometheus-url for this module's tests."""
    operator.stop()
    operator.prometheus_url = prometheus.url
    operator.start()
    yield operator
    operator.stop()
    operator.prometheus_url = ""
    operator.start()


@pytest.fixture(scope="module")
def served(
    cluster: LocalCluster, kube, prometheus: LocalPrometheus, tiny_models: TinyModels
) -> Iterator[None]:
    """Prometheus discovers the model-server pods; each bundle version's pods fail requests at
    their role's rate (the local kubelet's fault injection, matched by revision label)."""
    global MODELS
    MODELS = tiny_models
    prometheus.discover_pods(cluster.monitoring_kubeconfig())
    faults = {
        role: json.dumps(
            {
                "labels": {"finetune.dev/revision": revision(analysed_doc(version, 1))},
                # and keep a fifth of their answers for review (samples and incident records)
                "args": [f"--fault-error-rate={FAULTS_BY_ROLE[role]}", "--sample-rate=0.2"],
            }
        )
        for role, version in VERSIONS.items()
    }
    namespace, name = FAULTS
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": faults})
    yield
    core.delete_namespaced_config_map(name, namespace)


def start_release(releases: Releases, candidate_version: str, **kwargs: Any) -> tuple[str, str]:
    """Promotes the stable bundle (the first revision needs no analysis), then changes the
    bundle to the candidate's; returns (stable, candidate) revisions."""
    stable_doc = analysed_doc(VERSIONS["stable"], **kwargs)
    releases.create(stable_doc)
    stable = releases.wait_phase(NAME, "Promoted")["stableRevision"]
    candidate_doc = analysed_doc(candidate_version, **kwargs)
    patch = copy.deepcopy(candidate_doc["spec"])
    patch["bundle"]["prompt"]["outputFormat"].setdefault("pattern", None)  # a merge patch
    releases.patch(NAME, {"spec": patch})
    return stable, revision(candidate_doc)


def traffic(releases: Releases) -> GatewayStandIn:
    # Whole chat answers (what the format check judges): the end-of-sequence token is made the
    # first choice, so each answer ends at once, empty: valid text, and not the JSON asked for.
    request = chat(NAME, logit_bias={str(EOS): 100})
    return GatewayStandIn(releases.custom.api_client, releases.namespace, NAME, request, rps=RPS)


def operator_metric(operator: OperatorProcess, name: str, namespace: str) -> float:
    """The operator's own metric `name` for the test's release."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("namespace") == namespace:
                return sample.value
    raise AssertionError(f"{name} for namespace {namespace} not in the operator's metrics")


def revision_pods(releases: Releases, revision_: str) -> list[client.V1Pod]:
    selector = f"finetune.dev/release={NAME},finetune.dev/revision={revision_}"
    return releases.core.list_namespaced_pod(releases.namespace, label_selector=selector).items


def reasons(releases: Releases) -> list[str]:
    return [reason for reason, _ in releases.events(NAME)]


def test_a_healthy_candidate_is_promoted_on_analysis(
    analysing_operator, served, releases: Releases, installed
):
    stable, candidate = start_release(releases, VERSIONS["healthy"], canary_seconds=10)
    with traffic(releases) as generator:
        # On call: what each side answers, side by side, from their pods' admin ports through
        # the apiserver's pod proxy.
        releases.wait(NAME, "canary-50", lambda s: (s.get("stage") or {}).get("startedAt"))
        sides: dict[str, Any] = {}

        def both_sampled() -> bool:
            shown = cli(installed, "samples", NAME, "-n", releases.namespace, "-o", "json")
            assert shown.returncode == 0, shown.stderr
            sides.clear()
            sides.update(json.loads(shown.stdout))
            return all(sides.get(role, {}).get("samples") for role in ("candidate", "stable"))

        try:
            wait_until("samples of both sides", both_sampled, 30, interval=1)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {sides}") from None
        for role, revision_ in (("candidate", candidate), ("stable", stable)):
            assert sides[role]["revision"] == revision_ and not sides[role]["errors"]
            pods = {p.metadata.name for p in revision_pods(releases, revision_)}
            assert {s["pod"] for s in sides[role]["samples"]} <= pods
            assert all(s["messages"] and "response" in s for s in sides[role]["samples"])
        status = releases.wait(
            NAME, "promoted", lambda s: s.get("stableRevision") == candidate, timeout=150
        )
    assert status["phase"] == "Promoted"
    assert generator.sent[(f"{NAME}-{candidate}", 500)] > 0  # the candidate did fail some requests
    history = status["history"][0]
    assert (history["revision"], history["outcome"]) == (candidate, "Promoted")
    # Each stage passed on analysis: an Event per metric with its figures.
    passes: list[str] = []

    def both_stages_passed() -> bool:
        passes[:] = [m for r, m in releases.events(NAME) if r == "Analysis" and "errors: Pass" in m]
        return len(passes) >= 2

    wait_until("an errors: Pass Event per stage", both_stages_passed, 15)
    assert "candidate" in passes[0] and "stable" in passes[0] and "evidence" in passes[0]


def test_twice_the_stable_error_rate_is_rolled_back_with_the_reason(
    analysing_operator, served, releases: Releases
):
    stable, _candidate = start_release(releases, VERSIONS["regressed"], canary_seconds=600)
    with traffic(releases):
        status = releases.wait_phase(NAME, "RolledBack", timeout=150)
    reason = status["history"][0]["reason"]
    # The metric, both figures and the bound.
    assert reason.startswith("errors: candidate "), reason
    assert " vs stable " in reason and "evidence" in reason and ">= 100" in reason
    candidate_rate = float(reason.split("candidate ")[1].split("%")[0]) / 100
    stable_rate = float(reason.split("vs stable ")[1].split("%")[0]) / 100
    assert candidate_rate > 1.3 * stable_rate
    assert reason in releases.wait_event(NAME, "RolledBack")[-1]
    releases.wait_route(NAME, (((stable, 100),), None, 0))
    errors = next(r for r in status["analysis"] if r["metric"] == "errors")
    assert errors["outcome"] == "Fail" and errors["evidence"] >= 100
    evidence = operator_metric(
        analysing_operator, "ftrelease_analysis_evidence", releases.namespace
    )
    assert evidence >= 100


def test_answers_that_break_the_output_format_are_rolled_back_with_an_incident_record(
    analysing_operator, served, releases: Releases, installed
):
    metrics = [
        {"name": "errors", "template": "error-rate"},
        {"name": "format", "template": "format-invalid-rate", "margin": 0},
    ]
    stable, candidate = start_release(
        releases, VERSIONS["json"], canary_seconds=600, metrics=metrics
    )
    candidate_pods: set[str] = set()

    def rolled_back(status: dict[str, Any]) -> bool:
        candidate_pods.update(p.metadata.name for p in revision_pods(releases, candidate))
        return status.get("phase") == "RolledBack"

    with traffic(releases):
        status = releases.wait(NAME, "rolled back", rolled_back, timeout=150)
    reason = status["history"][0]["reason"]
    assert reason.startswith("format: candidate 100.000% vs stable 0.000%"), reason
    outcomes = {r["metric"]: r["outcome"] for r in status["analysis"]}
    assert outcomes["format"] == "Fail" and outcomes["errors"] != "Fail"
    releases.wait_route(NAME, (((stable, 100),), None, 0))

    # The incident record: kept in the cluster, exported for people as JSON lines.
    [recorded] = releases.wait_event(NAME, "IncidentRecorded", timeout=30)
    exported = cli(installed, "failures", NAME, "-n", releases.namespace)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert lines, recorded
    incident = lines[0]["incident"]
    assert incident["reason"] == reason and incident["revision"] == candidate
    assert incident["stableRevision"] == stable
    assert incident["bundle"]["dataset"]["version"] == VERSIONS["json"]
    assert incident["bundle"]["prompt"]["outputFormat"]["type"] == "json-schema"
    figures = {r["metric"]: r for r in incident["analysis"]}
    assert figures["format"]["outcome"] == "Fail" and figures["format"]["evidence"] >= 100
    failing = [line["sample"] for line in lines if "format_invalid" in line["sample"]["flags"]]
    assert len(failing) >= 10 and len(lines) <= 70, "flagged outputs first, bounded"
    for sample in failing:
        # What the candidate's own server answered and flagged: the request as the gateway
        # sent it, the server's (empty, not JSON) answer ended by its stop token.
        assert sample["pod"] in candidate_pods and sample["adapter"]
        assert sample["messages"][-1]["role"] == "user"
        assert sample["response"] == "" and sample["finish_reason"] == "stop"
    assert all(line["label"] is None for line in lines)


def test_prometheus_down_holds_the_weights_and_the_rollout_goes_on_after(
    analysing_operator, served, releases: Releases, prometheus: LocalPrometheus
):
    stable, candidate = start_release(releases, VERSIONS["healthy"], canary_seconds=12)
    split = (((stable, 50), (candidate, 50)), None, 0)
    with traffic(releases):
        releases.wait(NAME, "first analysis", lambda s: s.get("analysis"), timeout=60)
        prometheus.stop()
        try:
            held = releases.wait(
                NAME,
                "Analysis condition False",
                lambda s: any(
                    c["type"] == "Analysis" and c["status"] == "False"
                    for c in s.get("conditions", [])
                ),
                timeout=30,
            )
            condition = next(c for c in held["conditions"] if c["type"] == "Analysis")
            assert condition["reason"] == "MetricsUnavailable"
            assert "unreachable" in condition["message"]
            assert "unreachable" in releases.wait_event(NAME, "AnalysisError")[-1]
            # Past the stage's 12 seconds, the weights stay and nothing is decided.
            end = time.monotonic() + 15
            while time.monotonic() < end:
                status = releases.status(NAME)
                assert status["phase"] == "Progressing", status
                assert status["stage"]["name"] == "canary-50"
                assert releases.route_state(NAME) == split
                time.sleep(0.5)
            assert "holding traffic" in status["message"]
        finally:
            prometheus.start()
        status = releases.wait(
            NAME, "promoted", lambda s: s.get("stableRevision") == candidate, timeout=120
        )
    releases.wait_event(NAME, "AnalysisRecovered")
    assert "RolledBack" not in reasons(releases)
    # On-call sees the failed attempts in the operator's own metrics.
    assert (
        operator_metric(analysing_operator, "ftrelease_analysis_errors_total", releases.namespace)
        >= 1
    )


def test_a_wrong_query_is_an_error_with_prometheus_message_then_on_error_acts(
    analysing_operator, served, releases: Releases
):
    broken = {
        "name": "escalations",
        "query": "sum(rate(app_escalations_total[{{interval}}])",  # one ")" short
        "judge": "threshold",
        "max": 1,
    }
    stable, _candidate = start_release(
        releases,
        VERSIONS["healthy"],
        canary_seconds=2,
        metrics=[broken],
        onError={"after": "8s", "action": "rollback"},
    )
    status = releases.wait(
        NAME,
        "Error outcome",
        lambda s: any(r["outcome"] == "Error" for r in s.get("analysis", [])),
        timeout=60,
    )
    message = status["analysis"][0]["message"]
    assert "prometheus refused the query: bad_data" in message, message
    assert "parse error" in message
    assert status["phase"] == "Progressing"
    # onError: rollback after 8s of Error, with the reason.
    status = releases.wait_phase(NAME, "RolledBack", timeout=60)
    assert "analysis failing for 8s" in status["history"][0]["reason"]
    assert "bad_data" in status["history"][0]["reason"]
    assert status["stableRevision"] == stable


def finetune(installed, releases: Releases, *args: str) -> str:
    """`kubectl finetune ARGS` against the local cluster; its output."""
    options = ["-n", releases.namespace, "--kubeconfig", str(installed.kubeconfig)]
    result = subprocess.run(
        [sys.executable, "-m", "ftrelease.cli.main", *args, *options],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_zero_traffic_is_no_data_and_never_promotes(
    analysing_operator, served, installed, releases: Releases
):
    stable, candidate = start_release(releases, VERSIONS["healthy"], canary_seconds=3)
    status = releases.wait(
        NAME,
        "NoData",
        lambda s: any(r["outcome"] == "NoData" for r in s.get("analysis", [])),
        timeout=60,
    )
    assert "0 of 40 candidate samples" in status["analysis"][0]["message"]
    # The stage's 3 seconds pass; NoData waits until the stage's longest time (3 x 3s), then
    # pauses for a person: never promoted, never rolled back.
    status = releases.wait_phase(NAME, "Paused", timeout=60)
    assert status["stage"]["name"] == "canary-50"
    assert "inconclusive" in status["stage"]["hold"]
    assert status["analysis"][0]["outcome"] == "Inconclusive"
    assert status["stableRevision"] == stable
    releases.wait_event(NAME, "Inconclusive")
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    time.sleep(3)
    status = releases.status(NAME)
    assert status["phase"] == "Paused" and status["stableRevision"] == stable
    assert releases.route_state(NAME) == (((stable, 50), (candidate, 50)), None, 0)
    shown = finetune(installed, releases, "status", NAME)
    assert "held:" in shown and "inconclusive" in shown
    assert "errors" in shown and "Inconclusive" in shown  # the metric's row
    # A person resumes: the hold goes, analysis waits again with a fresh clock.
    finetune(installed, releases, "resume", NAME)
    releases.wait(NAME, "hold released", lambda s: not s["stage"].get("hold"), timeout=30)
    releases.wait_event(NAME, "Resumed")
