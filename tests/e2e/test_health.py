"""GitOps health on the real control plane: a release taken through every state a GitOps tool
must tell apart, each read at once by Argo CD's health check and kstatus (tests/health), and
`kubectl wait --for=condition=Ready` returning on promotion. FTRELEASE_RECORD_HEALTH=1 also
writes the objects to tests/health/recorded/, which the non-e2e tests read."""

from __future__ import annotations

import copy
import json
import os

import pytest

from tests.e2e.conftest import Releases, release_doc
from tests.e2e.test_on_call import cli
from tests.e2e.test_rollout import NAME, promoted_first
from tests.health import EXPECTED, RECORDED, healths

pytestmark = pytest.mark.e2e


def stage_is(name: str):
    """The stage is under way: its route written (Shadow or Progressing)."""
    return lambda s: (
        (s.get("stage") or {}).get("name") == name
        and s.get("phase")
        in (
            "Shadow",
            "Progressing",
        )
    )


def test_each_state_reads_as_argo_cd_and_kstatus_should(installed, releases: Releases, tmp_path):
    namespace = releases.namespace
    recorded: dict[str, dict] = {}

    def record(state: str, name: str = NAME) -> None:
        obj = releases.get(name)
        obj["metadata"].pop("managedFields", None)
        recorded[state] = obj

    def finetune(*args: str) -> None:
        done = cli(installed, *args, "-n", namespace)
        assert done.returncode == 0, done.stderr

    def new_bundle(version: str, **changes) -> None:
        releases.patch(NAME, {"spec": {"bundle": {"dataset": {"version": version}, **changes}}})

    doc = release_doc(stage_seconds=6)
    promoted_first(releases, doc)
    record("promoted")
    waited = installed.kubectl(
        "wait", "--for=condition=Ready", f"ftr/{NAME}", "-n", namespace, "--timeout=30s"
    )
    assert "condition met" in waited.stdout
    stale = copy.deepcopy(recorded["promoted"])  # a spec change the operator has not seen yet
    stale["metadata"]["generation"] += 1
    recorded["promoted-spec-not-yet-observed"] = stale

    new_bundle("v2")
    for stage in ("shadow", "canary-1", "canary-10"):
        releases.wait(NAME, stage, stage_is(stage), 60)
        record(stage)
    releases.wait(NAME, "v2 promoted", lambda s: s.get("phase") == "Promoted", 60)

    new_bundle("v3")
    releases.wait(NAME, "shadow", stage_is("shadow"), 60)
    finetune("pause", NAME, "--reason", "checking")
    releases.wait_phase(NAME, "Paused", 30)
    record("paused")
    finetune("resume", NAME)
    finetune("abort", NAME, "--reason", "bad answers")
    releases.wait_phase(NAME, "RolledBack", 30)
    record("aborted")

    finetune("retry", NAME)
    releases.wait(NAME, "shadow again", stage_is("shadow"), 60)
    new_bundle("v2")  # the stable's bundle again
    releases.wait(
        NAME,
        "set back",
        lambda s: s.get("phase") == "RolledBack" and not s.get("candidateRevision"),
        60,
    )
    record("set-back-to-stable")

    new_bundle("v4")
    releases.wait(NAME, "v4 promoted", lambda s: s.get("phase") == "Promoted", 90)
    finetune("rollback", NAME, "--reason", "regression")
    releases.wait(
        NAME, "rolled back", lambda s: s.get("phase") == "RolledBack" and not s.get("rollingBackTo")
    )
    record("rolled-back-after-promotion")

    releases.patch(NAME, {"spec": {"gate": {"evals": {"minScores": {"accuracy": 0.95}}}}})
    new_bundle("v5")
    releases.wait_phase(NAME, "Gated", 30)
    record("gated")

    stuck = release_doc(stage_seconds=6)
    stuck["metadata"]["name"] = "stuck"
    stuck["spec"]["serving"]["replicas"] = 12
    stuck["spec"]["serving"]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    stuck["spec"]["strategy"]["progressDeadline"] = "10s"
    releases.create(stuck)
    releases.wait("stuck", "promoted", lambda s: s.get("phase") == "Promoted", 60)
    releases.patch("stuck", {"spec": {"bundle": {"dataset": {"version": "v2"}}}})
    releases.wait("stuck", "waiting", lambda s: "Insufficient" in s.get("message", ""), 30)
    record("waiting-for-pods", "stuck")
    releases.wait("stuck", "stalled", lambda s: "progress deadline" in s.get("message", ""), 60)
    record("stalled", "stuck")

    assert set(recorded) == set(EXPECTED)
    files = []
    for state, obj in recorded.items():
        path = tmp_path / f"{state}.json"
        path.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
        files.append(path)
    found = healths(files)
    read = {state: (v["argo"]["status"], v["kstatus"]["status"]) for state, v in found.items()}
    assert read == EXPECTED
    if os.environ.get("FTRELEASE_RECORD_HEALTH"):
        RECORDED.mkdir(exist_ok=True)
        for path in files:
            (RECORDED / path.name).write_text(path.read_text())
