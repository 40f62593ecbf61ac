"""On call, on the real control plane: `kubectl finetune rollback` after a promotion (to the
previous stable kept warm, and --to an older revision kept cold), that a GitOps re-apply of the
unchanged manifest does not roll the bundle out again, that abort never is a silent no-op, and
`history` / `diff` / `diff -f` explaining a prompt-only change."""

from __future__ import annotations

import subprocess
import time

import pytest
import yaml
from ftrelease.api.revision import revision_of
from ftrelease.api.spec import FineTuneReleaseSpec

from tests.cluster.processes import wait_until
from tests.e2e.conftest import Releases, gitops_sync, release_doc
from tests.e2e.test_cli_commands import finetune, run
from tests.e2e.test_rollout import NAME, promoted_first

pytestmark = pytest.mark.e2e


def revision(doc) -> str:
    return revision_of(FineTuneReleaseSpec.model_validate(doc["spec"]).bundle)


def rolled_out(releases: Releases, doc, version: str) -> str:
    """`doc` with dataset version `version`, applied and walked to promotion."""
    doc["spec"]["bundle"]["dataset"]["version"] = version
    releases.patch(NAME, {"spec": {"bundle": {"dataset": {"version": version}}}})
    status = releases.wait(
        NAME, f"{version} promoted", lambda s: s.get("stableRevision") == revision(doc), 90
    )
    assert status["phase"] == "Promoted"
    return revision(doc)


def deployment(releases: Releases, revision: str):
    return releases.apps.read_namespaced_deployment(f"{NAME}-{revision}", releases.namespace)


def cli(installed, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(finetune(installed, *args), capture_output=True, text=True, check=False)


def test_rollback_after_promotion_to_the_warm_previous_stable(installed, releases: Releases):
    namespace = releases.namespace
    doc = release_doc(stage_seconds=2)
    v1 = promoted_first(releases, doc)
    v2 = rolled_out(releases, doc, "v2")
    # Past scaleDownDelay (2s) the previous stable keeps one pod (keepPreviousStable).
    wait_until("v1 kept warm", lambda: deployment(releases, v1).spec.replicas == 1, 30)
    wait_until("v1 pod ready", lambda: deployment(releases, v1).status.ready_replicas == 1, 30)
    kept = deployment(releases, v1).metadata.uid

    said = run(installed, "rollback", NAME, "-n", namespace, "--reason", "bad answers")
    assert f"rollback to {v1} requested by admin" in said
    releases.wait_route(NAME, (((v1, 100),), None, 0), timeout=15)
    status = releases.wait_phase(NAME, "RolledBack")
    assert deployment(releases, v1).metadata.uid == kept, "the warm target's objects reused"
    assert releases.revisions(NAME) == {v1, v2}
    assert (status["stableRevision"], status["candidateRevision"]) == (v1, v2)
    assert f"spec bundle (revision {v2}) is rolled back" in status["message"]
    assert "kubectl finetune retry" in status["message"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "False" and conditions["Stalled"] == "True"
    [started] = releases.wait_event(NAME, "RollbackStarted")
    assert (
        started
        == f"rolling back from {v2} to {v1} by admin (kubectl finetune rollback: bad answers)"
    )
    wait_until("v1 scaled back up", lambda: deployment(releases, v1).spec.replicas == 2, 15)

    # A GitOps sync: the unchanged manifest (it still says v2), applied again.
    generation = releases.get(NAME)["metadata"]["generation"]
    gitops_sync(installed, releases, doc)
    time.sleep(5)
    after = releases.get(NAME)
    assert after["metadata"]["generation"] == generation
    assert after["status"]["phase"] == "RolledBack" and "stage" not in after["status"]
    assert releases.route_state(NAME) == (((v1, 100),), None, 0)

    # abort has nothing to act on now: the CLI refuses, naming rollback; set by hand, the
    # operator answers with an Event.
    refused = cli(installed, "abort", NAME, "-n", namespace)
    assert refused.returncode == 1 and "kubectl finetune rollback" in refused.stderr
    releases.patch(NAME, {"metadata": {"annotations": {"finetune.dev/abort": "by hand"}}})
    [ignored] = releases.wait_event(NAME, "CommandIgnored")
    assert "abort ignored" in ignored and "kubectl finetune rollback" in ignored
    assert releases.route_state(NAME) == (((v1, 100),), None, 0)


def test_rollback_to_an_older_cold_revision(installed, releases: Releases):
    namespace = releases.namespace
    doc = release_doc(stage_seconds=2, **{"strategy.keepPreviousStable": {"replicas": 0}})
    v1 = promoted_first(releases, doc)
    rolled_out(releases, doc, "v2")
    v3 = rolled_out(releases, doc, "v3")
    wait_until("v1 cold", lambda: deployment(releases, v1).spec.replicas == 0, 30)
    kept = deployment(releases, v1).metadata.uid

    run(installed, "rollback", NAME, "--to", v1[:6], "-n", namespace)
    releases.wait_route(NAME, (((v1, 100),), None, 0), timeout=60)
    status = releases.wait_phase(NAME, "RolledBack")
    assert (status["stableRevision"], status["candidateRevision"]) == (v1, v3)
    assert deployment(releases, v1).metadata.uid == kept
    assert deployment(releases, v1).status.ready_replicas == 2, "all its pods before traffic"

    unknown = cli(installed, "rollback", NAME, "--to", "ffffff", "-n", namespace)
    assert unknown.returncode == 1 and "is not a retained revision" in unknown.stderr


def test_history_and_diff_explain_a_prompt_only_change(installed, releases: Releases, tmp_path):
    namespace = releases.namespace
    doc = release_doc(stage_seconds=2)
    doc["spec"]["bundle"]["prompt"]["system"] = "Answer from the knowledge base.\nBe brief."
    v1 = promoted_first(releases, doc)
    doc["spec"]["bundle"]["prompt"]["system"] = "Answer from the knowledge base.\nBe kind."
    releases.patch(NAME, {"spec": {"bundle": {"prompt": doc["spec"]["bundle"]["prompt"]}}})
    v2 = revision(doc)
    releases.wait(NAME, "v2 promoted", lambda s: s.get("stableRevision") == v2, 90)

    history = run(installed, "history", NAME, "-n", namespace)
    [row] = [line for line in history.splitlines() if v2 in line]
    assert "Promoted" in row and "prompt.system" in row

    shown = cli(installed, "diff", NAME, v1, v2, "-n", namespace)
    assert shown.returncode == 1, shown.stderr
    assert shown.stdout.splitlines() == [
        "~ prompt.system:",
        f"    --- {v1} prompt.system",
        f"    +++ {v2} prompt.system",
        "    @@ -1,2 +1,2 @@",
        "     Answer from the knowledge base.",
        "    -Be brief.",
        "    +Be kind.",
    ]

    manifest = tmp_path / "release.yaml"
    doc["metadata"]["namespace"] = namespace
    manifest.write_text(yaml.safe_dump(doc))
    same = cli(installed, "diff", "-f", str(manifest))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "nothing would roll out" in same.stdout
    doc["spec"]["bundle"]["prompt"]["system"] = "Be terse."
    manifest.write_text(yaml.safe_dump(doc))
    changed = cli(installed, "diff", "-f", str(manifest))
    assert changed.returncode == 1 and "bundle fields that change: prompt.system" in changed.stdout


def test_a_route_the_gateway_does_not_accept_stalls_the_stage_with_its_reason(releases: Releases):
    """The test writes the HTTPRoute's status as a gateway controller would (the local
    platform's gateway stand-in writes none): Accepted=False for the route's generation."""
    doc = release_doc(stage_seconds=2, **{"strategy.progressDeadline": "6s"})
    stable = promoted_first(releases, doc)
    releases.patch(NAME, {"spec": {"bundle": {"dataset": {"version": "v2"}}}})
    releases.wait(NAME, "shadow route", lambda s: (s.get("stage") or {}).get("name") == "shadow")
    wait_until("mirror written", lambda: releases.route_state(NAME)[1] is not None, 15)
    route = releases.route(NAME)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    condition = {
        "type": "Accepted",
        "status": "False",
        "reason": "NotAllowedByListeners",
        "message": "no listener of gateway inference admits routes from this namespace",
        "observedGeneration": route["metadata"]["generation"],
        "lastTransitionTime": now,
    }
    parent = {"name": "inference", "namespace": "gateway-system"}
    releases.custom.patch_namespaced_custom_object_status(
        "gateway.networking.k8s.io",
        "v1",
        releases.namespace,
        "httproutes",
        NAME,
        {
            "status": {
                "parents": [
                    {
                        "parentRef": parent,
                        "controllerName": "example.com/gateway",
                        "conditions": [condition],
                    }
                ]
            }
        },
    )
    status = releases.wait_phase(NAME, "Paused", timeout=30)
    assert "NotAllowedByListeners" in status["message"]
    assert status["stage"]["name"] == "shadow"
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "ProgressDeadlineExceeded")
    [event] = releases.wait_event(NAME, "ProgressDeadlineExceeded")
    assert "NotAllowedByListeners" in event
    weights = dict(releases.route_state(NAME)[0])
    assert weights[stable] == 100, "no live traffic moved to the candidate"
