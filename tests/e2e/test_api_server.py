"""The FineTuneRelease CRD on the real apiserver: it accepts what the offline validator accepts,
and refuses the invalid specs with the same field paths."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from ftrelease.api.resource import GROUP, PLURAL, VERSION
from ftrelease.api.revision import revision_of
from ftrelease.api.validation import validate_release
from ftrelease.cli.server import ServerDryRun
from hypothesis import HealthCheck, given, settings
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.api_cases import CASES, EXAMPLES, load_example
from tests.api_strategies import release_documents

pytestmark = pytest.mark.e2e

EXAMPLE_NAMESPACE = "ml"  # the examples name it


@pytest.fixture(scope="module")
def dry_run(cluster, kube) -> ServerDryRun:
    try:
        client.CoreV1Api(kube).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=EXAMPLE_NAMESPACE))
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    return ServerDryRun(kubeconfig=str(cluster.kubeconfig))


def validate_on_server(cluster, path) -> subprocess.CompletedProcess[str]:
    """`kubectl finetune validate --server PATH` against the local cluster."""
    return subprocess.run(
        [sys.executable, "-m", "ftrelease.cli.main", "validate", "--server", str(path)],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_examples_pass_offline_and_server_side_dry_run(cluster, dry_run):
    result = validate_on_server(cluster, EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 releases checked, 0 with problems" in result.stderr


def test_cli_reports_server_problems_with_field_paths(cluster, dry_run, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(CASES[0].document()))
    result = validate_on_server(cluster, path)
    assert result.returncode == 1
    assert (
        f"{path}: FineTuneRelease/support-bot: server: spec.bundle.baseModel.revision: "
        in result.stdout
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_invalid_spec_is_rejected_by_the_apiserver_naming_the_field(dry_run, case):
    problems = dry_run.problems(case.document())
    assert case.path in [p.path for p in problems], problems


def test_server_defaults_give_the_same_revision(kube, namespace):
    custom = client.CustomObjectsApi(kube)
    doc = load_example("summarizer-merged-builtin.yaml")
    del doc["spec"]["bundle"]["prompt"]["outputFormat"]  # left to the defaults
    doc["metadata"]["namespace"] = namespace
    stored = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    # The apiserver filled in the defaults; the revision is the same either way.
    assert stored["spec"]["bundle"]["prompt"]["outputFormat"] == {"type": "text"}
    assert stored["spec"]["bundle"]["routing"]["matches"] == []
    local, _ = validate_release(doc)
    server, problems = validate_release(stored)
    assert problems == []
    assert revision_of(server.spec.bundle) == revision_of(local.spec.bundle)


def test_short_name_and_printer_columns(cluster, namespace):
    doc = load_example("classifier-replicas.yaml")
    doc["metadata"]["namespace"] = namespace
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    out = cluster.kubectl("get", "ftr", "-n", namespace).stdout
    assert out.split()[:7] == ["NAME", "PHASE", "STAGE", "WEIGHT", "STABLE", "CANDIDATE", "AGE"]
    assert "intent-classifier" in out


def test_what_the_validator_accepts_the_apiserver_accepts(dry_run):
    seen = {"accepted": 0, "rejected": 0}

    @settings(
        max_examples=80,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(release_documents())
    def check(document):
        document["metadata"]["namespace"] = EXAMPLE_NAMESPACE
        release, _ = validate_release(document)
        if release is None:
            seen["rejected"] += 1
            return
        seen["accepted"] += 1
        assert dry_run.problems(document) == []

    check()
    # The sample must really exercise acceptance, not only rejections.
    assert seen["accepted"] >= 10, seen


def test_any_unicode_in_the_prompt_reaches_the_apiserver_intact(dry_run):
    doc = load_example()
    doc["spec"]["bundle"]["prompt"]["system"] = "Réponds en JSON 🚀 \x85\x7f\u2028 tab\tend"
    assert validate_release(doc)[1] == []
    assert dry_run.problems(doc) == []


def test_a_replicas_split_the_pods_cannot_give_is_refused_naming_the_stage(dry_run):
    """1% with 2 replicas would send 50% to the candidate: refused offline and by the
    apiserver, both naming the stage; accepted once the release opts in."""
    doc = load_example("classifier-replicas.yaml")
    doc["spec"]["serving"]["replicas"] = 2
    doc["spec"]["strategy"]["stages"] = [
        {"name": "canary-1", "weight": 1, "duration": "10m"},
        {"name": "full", "weight": 100},
    ]
    _, offline = validate_release(doc)
    server = dry_run.problems(doc)
    for problems in (offline, server):
        [problem] = [p for p in problems if p.path == "spec.strategy.stages"]
        assert "stage canary-1" in problem.message and "approximateSplits" in problem.message
    assert "sends 50% of traffic" in offline[0].message
    doc["spec"]["traffic"]["approximateSplits"] = True
    assert validate_release(doc)[1] == [] and dry_run.problems(doc) == []
