"""The rollout engine on the real control plane: the operator process (with the manifests' RBAC)
moves an HTTPRoute through the stages while KWOK makes the Deployments Available."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from ftrelease.api.revision import revision_of
from ftrelease.api.validation import validate_release
from kubernetes.client.rest import ApiException

from tests.api_cases import load_example
from tests.cluster.localcluster import REPO_ROOT
from tests.cluster.processes import wait_until
from tests.e2e.conftest import Releases, TinyModels, new_version, release_doc

pytestmark = pytest.mark.e2e

NAME = "support-bot"


def revision(doc) -> str:
    release, problems = validate_release(doc)
    assert not problems
    return revision_of(release.spec.bundle)


def promoted_first(releases: Releases, doc) -> str:
    releases.create(doc)
    status = releases.wait_phase(NAME, "Promoted")
    assert status["stableRevision"] == revision(doc)
    return status["stableRevision"]


def test_a_release_walks_shadow_1_10_100_and_promotion_keeps_the_pods(releases: Releases):
    doc = release_doc(stage_seconds=3)
    stable = promoted_first(releases, doc)
    assert releases.route_state(NAME) == (((stable, 100),), None, 0)

    releases.patch(NAME, new_version("2026-11-27"))
    doc["spec"]["bundle"]["dataset"]["version"] = "2026-11-27"
    candidate = revision(doc)
    expected = {
        "shadow": (((stable, 100), (candidate, 0)), candidate, 100),
        "canary-1": (((stable, 99), (candidate, 1)), None, 0),
        "canary-10": (((stable, 90), (candidate, 10)), None, 0),
        "full": (((stable, 0), (candidate, 100)), None, 0),
    }
    seen: dict[str, tuple] = {}
    full_stage_pods: set[str] = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = releases.status(NAME)
        if status.get("phase") == "Promoted" and status.get("stableRevision") == candidate:
            break
        stage = status.get("stage") or {}
        if stage.get("startedAt"):  # the stage's route is in place: it must be exactly the stage's
            route = releases.route_state(NAME)
            after = releases.status(NAME)
            # Still this stage, and not the moment the promotion's route write is in flight
            # (status says "promoting" first, then the route flips, then Promoted).
            if (after.get("stage") or {}).get("name") == stage[
                "name"
            ] and "promoting" not in after.get("message", ""):
                seen.setdefault(stage["name"], route)
                assert route == expected[stage["name"]], (stage["name"], route)
                if stage["name"] == "full":
                    full_stage_pods = releases.pod_uids(NAME, candidate)
        time.sleep(0.2)
    assert list(seen) == ["shadow", "canary-1", "canary-10", "full"]
    status = releases.status(NAME)
    assert status["phase"] == "Promoted"
    assert status["stableRevision"] == candidate
    assert releases.route_state(NAME) == (((candidate, 100),), None, 0)
    # Promotion is a route flip: the candidate's pods are the ones that served the full stage.
    assert len(full_stage_pods) == 2
    assert releases.pod_uids(NAME, candidate) == full_stage_pods
    for reason in ("RolloutStarted", "StageStarted", "StageCompleted", "Promoted"):
        releases.wait_event(NAME, reason)
    # The old stable is kept, with one pod after scaleDownDelay (keepPreviousStable).
    apps = releases.apps
    wait_until(
        "old stable kept warm with one pod",
        lambda: (
            apps.read_namespaced_deployment(f"{NAME}-{stable}", releases.namespace).spec.replicas
            == 1
        ),
        30,
    )


def test_canary_replicas_follow_the_weight(releases: Releases):
    # 20 replicas, without GPUs: more than the fake nodes have.
    doc = release_doc(**{"serving.replicas": 20, "serving.resources": {}})
    doc["spec"]["strategy"]["stages"] = [
        {"name": "canary-1", "weight": 1, "duration": "60s"},
        {"name": "full", "weight": 100},
    ]
    promoted_first(releases, doc)
    releases.patch(NAME, new_version("v2"))
    status = releases.wait(
        NAME, "canary-1 in place", lambda s: (s.get("stage") or {}).get("startedAt")
    )
    candidate = status["candidateRevision"]
    deployment = releases.apps.read_namespaced_deployment(f"{NAME}-{candidate}", releases.namespace)
    assert deployment.spec.replicas == 1, "a 1% canary holds one pod, not 20"
    assert len(releases.pod_uids(NAME, candidate)) == 1


def test_bundle_changes_supersede_and_revert_without_new_objects(releases: Releases):
    doc = release_doc(stage_seconds=2)
    first = promoted_first(releases, doc)

    # A second bundle rolls out against the first and becomes stable.
    releases.patch(NAME, new_version("v2"))
    second = releases.wait(
        NAME,
        "v2 promoted",
        lambda s: s.get("phase") == "Promoted" and s.get("stableRevision") != first,
        timeout=90,
    )["stableRevision"]

    # A third change mid-rollout supersedes the candidate: it starts over from the first stage.
    doc_long = release_doc(stage_seconds=60)
    releases.patch(NAME, {"spec": {"strategy": {"stages": doc_long["spec"]["strategy"]["stages"]}}})
    releases.patch(NAME, new_version("v3"))
    third = releases.wait(NAME, "v3 in shadow", lambda s: s.get("phase") == "Shadow")[
        "candidateRevision"
    ]
    releases.patch(NAME, new_version("v4"))
    status = releases.wait(
        NAME,
        "v4 in shadow",
        lambda s: (
            s.get("phase") == "Shadow"
            and s.get("candidateRevision") not in (None, third)
            and s["stage"].get("startedAt")
        ),
    )
    fourth = status["candidateRevision"]
    assert status["stage"]["name"] == "shadow"
    assert status["history"][0]["outcome"] == "Superseded"
    assert status["history"][0]["revision"] == third
    assert releases.route_state(NAME) == (((second, 100), (fourth, 0)), fourth, 100)

    # Setting the bundle back to the stable one ends the rollout, with no new objects.
    before = releases.revisions(NAME)
    releases.patch(NAME, new_version("v2"))
    status = releases.wait_phase(NAME, "RolledBack")
    assert status["stableRevision"] == second
    assert "candidateRevision" not in status
    releases.wait_route(NAME, (((second, 100),), None, 0))
    assert releases.revisions(NAME) <= before
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == "True"


def in_long_canary(releases: Releases) -> tuple[str, str]:
    """Promotes a first revision, starts a second, and waits until its 30s canary-1 stage has
    started. Returns the stage's clock and the route's resourceVersion."""
    doc = release_doc(stage_seconds=3)
    doc["spec"]["strategy"]["stages"][1]["duration"] = "30s"  # long enough to break things in
    promoted_first(releases, doc)
    releases.patch(NAME, new_version("v2"))
    status = releases.wait(
        NAME,
        "canary-1 started",
        lambda s: (s.get("stage") or {}).get("name") == "canary-1" and s["stage"].get("startedAt"),
        timeout=60,
    )
    return status["stage"]["startedAt"], releases.route(NAME)["metadata"]["resourceVersion"]


def assert_resumed(releases: Releases, started: str, route_version: str) -> None:
    time.sleep(4)  # several resyncs
    status = releases.status(NAME)
    assert status["stage"]["name"] == "canary-1"
    assert status["stage"]["startedAt"] == started, "the stage clock was not reset"
    assert releases.route(NAME)["metadata"]["resourceVersion"] == route_version, "no route write"
    # ... and it goes on from there.
    releases.wait(
        NAME, "canary-10", lambda s: (s.get("stage") or {}).get("name") == "canary-10", timeout=60
    )


def test_operator_sigkill_resumes_the_stage_without_resetting_its_clock_or_route(
    releases, operator
):
    started, route_version = in_long_canary(releases)
    operator.kill()
    time.sleep(2)
    operator.start()
    assert_resumed(releases, started, route_version)


def test_apiserver_restart_resumes_the_stage(installed, releases, operator):
    started, route_version = in_long_canary(releases)
    installed.restart_apiserver()
    wait_until(
        "the operator reconnects",
        lambda: "ftrelease_reconcile_duration_seconds_count" in operator.metrics(),
        30,
    )
    assert_resumed(releases, started, route_version)


def test_abort_command_rolls_back_and_a_rejected_spec_leaves_the_rollout_untouched(
    installed, releases
):
    doc = release_doc(stage_seconds=60)
    stable = promoted_first(releases, doc)
    releases.patch(NAME, new_version("v2"))
    status = releases.wait(
        NAME, "shadow started", lambda s: (s.get("stage") or {}).get("startedAt")
    )
    candidate = status["candidateRevision"]
    route_version = releases.route(NAME)["metadata"]["resourceVersion"]
    generation = releases.get(NAME)["metadata"]["generation"]

    # A bad edit is refused by the apiserver; nothing about the rollout changes.
    with pytest.raises(ApiException) as refused:
        releases.patch(NAME, {"spec": {"bundle": {"baseModel": {"revision": "main"}}}})
    assert refused.value.status == 422
    time.sleep(2)
    assert releases.get(NAME)["metadata"]["generation"] == generation
    assert releases.route(NAME)["metadata"]["resourceVersion"] == route_version
    assert releases.status(NAME)["stage"] == status["stage"]

    # kubectl finetune abort: all traffic back on stable, the candidate kept warm, then zero.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftrelease.cli.main",
            "abort",
            NAME,
            "-n",
            releases.namespace,
            "--reason",
            "bad answers in shadow",
            "--kubeconfig",
            str(installed.kubeconfig),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status = releases.wait_phase(NAME, "RolledBack")
    assert "bad answers in shadow" in status["message"]
    releases.wait_route(NAME, (((stable, 100),), None, 0))
    wait_until(
        "the operator removes the handled command",
        lambda: (
            "finetune.dev/abort" not in (releases.get(NAME)["metadata"].get("annotations") or {})
        ),
        10,
    )
    assert status["message"] in releases.wait_event(NAME, "RolledBack")
    wait_until(
        "candidate scaled to zero",
        lambda: (
            releases.apps.read_namespaced_deployment(
                f"{NAME}-{candidate}", releases.namespace
            ).spec.replicas
            == 0
        ),
        30,
    )
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Ready": "False", "Reconciling": "False", "Stalled": "True"}
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftrelease.cli.main",
            "status",
            NAME,
            "-n",
            releases.namespace,
            "--kubeconfig",
            str(installed.kubeconfig),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "RolledBack" in shown.stdout and "bad answers in shadow" in shown.stdout


def test_deleting_a_release_removes_everything_it_owns(releases: Releases):
    doc = release_doc(stage_seconds=60)
    promoted_first(releases, doc)
    releases.patch(NAME, new_version("v2"))
    releases.wait(NAME, "shadow", lambda s: s.get("phase") == "Shadow")
    assert len(releases.revisions(NAME)) == 2
    releases.custom.delete_namespaced_custom_object(
        "finetune.dev", "v1alpha1", releases.namespace, "finetunereleases", NAME
    )

    def gone() -> bool:
        selector = f"finetune.dev/release={NAME}"
        ns = releases.namespace
        return not (
            releases.apps.list_namespaced_deployment(ns, label_selector=selector).items
            or releases.core.list_namespaced_service(ns, label_selector=selector).items
            or releases.core.list_namespaced_config_map(ns, label_selector=selector).items
            or releases.route(NAME)
        )

    wait_until("everything the release owned is gone", gone, 60)


def test_manifests_install_with_server_dry_run_and_the_operator_runs_with_their_rbac(
    installed, operator
):
    result = installed.kubectl(
        "apply", "-k", str(REPO_ROOT / "manifests"), "--dry-run=server", check=False
    )
    assert result.returncode == 0, result.stderr
    # The operator's identity is the manifests' ServiceAccount, and it cannot do more.
    kubeconfig = operator.kubeconfig
    can = installed.kubectl(
        "auth",
        "can-i",
        "patch",
        "httproutes.gateway.networking.k8s.io",
        "-n",
        "default",
        kubeconfig=kubeconfig,
        check=False,
    )
    assert can.stdout.strip() == "yes"
    cannot = installed.kubectl(
        "auth", "can-i", "delete", "secrets", "-n", "default", kubeconfig=kubeconfig, check=False
    )
    assert cannot.stdout.strip() == "no"
    metrics = operator.metrics()
    assert "ftrelease_reconcile_duration_seconds" in metrics
    assert "ftrelease_phase_transitions_total" in metrics


def test_operator_metrics_count_transitions(releases, operator):
    promoted_first(releases, release_doc())
    text = operator.metrics()
    line = f'ftrelease_releases{{namespace="{releases.namespace}",phase="Promoted",release="{NAME}"}} 1.0'
    assert line in text


def test_replicas_provider_splits_by_replica_count_behind_one_service(
    releases: Releases, tiny_models: TinyModels
):
    # Builtin runtime: its four pods really run (local kubelet), so on real tiny models.
    doc = tiny_models.use(load_example("classifier-replicas.yaml"), "a1")
    doc["spec"]["strategy"]["stages"] = [
        {"name": "quarter", "weight": 25, "duration": "20s"},
        {"name": "all", "weight": 100},
    ]
    name = doc["metadata"]["name"]
    releases.create(doc)
    stable = releases.wait_phase(name, "Promoted")["stableRevision"]
    service = releases.core.read_namespaced_service(name, releases.namespace)
    assert service.spec.selector == {"finetune.dev/release": name}

    releases.patch(name, new_version("v22"))
    status = releases.wait(name, "quarter", lambda s: (s.get("stage") or {}).get("startedAt"))
    candidate = status["candidateRevision"]

    def replicas(revision: str) -> int:
        return releases.apps.read_namespaced_deployment(
            f"{name}-{revision}", releases.namespace
        ).spec.replicas

    assert (replicas(stable), replicas(candidate)) == (3, 1)
    assert len(releases.pod_uids(name, candidate)) == 1
    # Status says the share the pods really give: 1 ready candidate pod of 4.
    releases.wait(name, "effective 25%", lambda s: s["stage"].get("effectiveWeight") == 25)
    releases.wait(name, "promoted", lambda s: s.get("stableRevision") == candidate, timeout=60)
    wait_until(
        "all pods on the new revision",
        lambda: (replicas(stable), replicas(candidate)) == (0, 4),
        30,
    )


def test_a_candidate_that_cannot_be_scheduled_is_stalled_with_the_schedulers_reason(
    releases: Releases,
):
    """12 stable pods of 1 GPU on two nodes of 8: the candidate's 12 do not all fit. Past its
    progress deadline the release is Stalled with the scheduler's message, with an Event, and
    every request stays on stable."""
    doc = release_doc(stage_seconds=3)
    doc["spec"]["serving"]["replicas"] = 12
    doc["spec"]["serving"]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    doc["spec"]["strategy"]["progressDeadline"] = "10s"
    stable = promoted_first(releases, doc)
    releases.patch(NAME, new_version("v2"))
    waiting = releases.wait(NAME, "waiting", lambda s: "Insufficient" in s.get("message", ""))
    assert waiting["phase"] == "Pending", waiting
    status = releases.wait(
        NAME,
        "Stalled",
        lambda s: any(
            c["type"] == "Stalled" and c["status"] == "True" for c in s.get("conditions", [])
        ),
        timeout=60,
    )
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "ProgressDeadlineExceeded"
    message = status["message"]
    assert status["phase"] == "Paused" and "progress deadline 10s exceeded" in message
    assert "Unschedulable" in message and "Insufficient nvidia.com/gpu" in message, message
    assert (
        "Insufficient nvidia.com/gpu" in releases.wait_event(NAME, "ProgressDeadlineExceeded")[-1]
    )
    assert releases.route_state(NAME) == (((stable, 100),), None, 0)
