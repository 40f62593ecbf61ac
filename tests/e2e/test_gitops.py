"""GitOps and on-call together, on the real control plane: a pause or an abort made from the
CLI survives a sync of the unchanged manifest, server-side (as Argo CD and Flux apply) and
client-side (kubectl apply); spec.paused in Git still pauses."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Releases, gitops_sync, release_doc
from tests.e2e.test_on_call import cli
from tests.e2e.test_rollout import NAME, promoted_first, revision

pytestmark = pytest.mark.e2e


def test_a_pause_and_an_abort_from_the_cli_survive_a_sync_of_the_unchanged_manifest(
    installed, releases: Releases
):
    namespace = releases.namespace
    doc = release_doc(stage_seconds=20)
    doc["spec"]["paused"] = False  # said in Git, explicitly
    stable = promoted_first(releases, doc)
    doc["spec"]["bundle"]["dataset"]["version"] = "v2"
    candidate = revision(doc)
    gitops_sync(installed, releases, doc)
    releases.wait(NAME, "shadow", lambda s: (s.get("stage") or {}).get("name") == "shadow")

    paused = cli(installed, "pause", NAME, "-n", namespace, "--reason", "answers look off")
    assert paused.returncode == 0, paused.stderr
    status = releases.wait_phase(NAME, "Paused", timeout=30)
    assert "answers look off" in status["message"] and status["pausedBy"]["reason"]
    assert releases.get(NAME)["spec"]["paused"] is False, "the CLI leaves the spec alone"
    gitops_sync(installed, releases, doc)
    time.sleep(25)  # longer than the stage: it would have moved on
    status = releases.status(NAME)
    assert status["phase"] == "Paused" and status["stage"]["name"] == "shadow", status
    assert status["pausedBy"]["reason"] == "answers look off"

    resumed = cli(installed, "resume", NAME, "-n", namespace)
    assert resumed.returncode == 0, resumed.stderr
    releases.wait(NAME, "canary-1", lambda s: (s.get("stage") or {}).get("name") == "canary-1")

    aborted = cli(installed, "abort", NAME, "-n", namespace, "--reason", "bad refunds")
    assert aborted.returncode == 0, aborted.stderr
    releases.wait_phase(NAME, "RolledBack", timeout=30)
    releases.wait_route(NAME, (((stable, 100),), None, 0))
    generation = releases.get(NAME)["metadata"]["generation"]
    gitops_sync(installed, releases, doc)
    time.sleep(5)
    after = releases.get(NAME)
    assert after["metadata"]["generation"] == generation, "nothing in the spec changed"
    assert after["status"]["phase"] == "RolledBack" and "stage" not in after["status"]
    assert after["status"]["candidateRevision"] == candidate
    assert releases.route_state(NAME) == (((stable, 100),), None, 0), "not restarted"


def test_spec_paused_in_git_pauses_and_the_cli_says_where_to_lift_it(installed, releases: Releases):
    namespace = releases.namespace
    doc = release_doc(stage_seconds=20)
    promoted_first(releases, doc)
    doc["spec"]["bundle"]["dataset"]["version"] = "v2"
    gitops_sync(installed, releases, doc)
    releases.wait(NAME, "shadow", lambda s: (s.get("stage") or {}).get("name") == "shadow")
    doc["spec"]["paused"] = True
    gitops_sync(installed, releases, doc)
    status = releases.wait_phase(NAME, "Paused", timeout=30)
    assert "set spec.paused=false" in status["message"]
    refused = cli(installed, "resume", NAME, "-n", namespace)
    assert refused.returncode == 1 and "spec.paused is true in its manifest" in refused.stderr
    doc["spec"]["paused"] = False
    gitops_sync(installed, releases, doc)
    releases.wait(NAME, "canary-1", lambda s: (s.get("stage") or {}).get("name") == "canary-1")
