"""Notifications on the real control plane: webhook receivers on 127.0.0.1 (real HTTP servers)
get every transition of a walk and of a rollback, in order, from the operator process; a
receiver that is down gets them all once it is back, across an operator restart too; an
unreachable or hanging receiver holds up no stage; a confirm webhook holds a stage until it
answers 2xx."""

from __future__ import annotations

import base64
import copy
import time
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.processes import wait_until
from tests.e2e.conftest import Releases, new_version, release_doc
from tests.e2e.test_engine import HungServer
from tests.e2e.test_on_call import cli
from tests.e2e.test_rollout import NAME, promoted_first, revision
from tests.operator_process import OperatorProcess
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

SECRET = "release-hooks"
WALK = [
    "RolloutStarted",
    "StageStarted",
    "StageCompleted",
    "StageStarted",
    "StageCompleted",
    "StageStarted",
    "StageCompleted",
    "StageStarted",
    "Promoted",
]


def hook_secret(releases: Releases, urls: dict[str, str]) -> None:
    data = {key: base64.b64encode(url.encode()).decode() for key, url in urls.items()}
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=SECRET), data=data)
    releases.core.create_namespaced_secret(releases.namespace, body)


def webhook(name: str, key: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "urlFrom": {"secretKeyRef": {"name": SECRET, "key": key}}, **more}


def promoted(releases: Releases, doc: dict[str, Any], version: str) -> dict[str, Any]:
    """Waits for the bundle at dataset `version` to be promoted."""
    doc = copy.deepcopy(doc)
    doc["spec"]["bundle"]["dataset"]["version"] = version
    expected = revision(doc)
    return releases.wait(
        NAME,
        f"{version} promoted",
        lambda s: s.get("phase") == "Promoted" and s.get("stableRevision") == expected,
    )


def first_seen(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each notification once, as first received (delivery is at least once; the id repeats)."""
    seen: dict[str, dict[str, Any]] = {}
    for body in bodies:
        seen.setdefault(body["id"], body)
    return list(seen.values())


def delivered(releases: Releases, hook: str) -> bool:
    """Every notification so far acknowledged by `hook`, as status says."""
    box = releases.status(NAME).get("notifications") or {}
    state = (box.get("webhooks") or {}).get(hook) or {}
    return box.get("sequence", 0) > 0 and state.get("delivered") == box["sequence"]


def test_a_receiver_gets_each_transition_of_a_walk_and_of_a_rollback_in_order(
    releases: Releases, installed
):
    frozen = {"canary-10": True}

    def answer(path: str, body: dict[str, Any]) -> tuple[int, str]:
        if path == "/confirm" and frozen.get(body["stage"]["name"]):
            return 403, "change freeze until the on-call says so"
        return 200, "ok"

    receiver = WebhookReceiver(answer).start()
    try:
        urls = {"json": "/oncall", "slack": "/chat", "confirm": "/confirm"}
        hook_secret(releases, {key: receiver.url(path) for key, path in urls.items()})
        doc = release_doc(stage_seconds=3)
        doc["spec"]["notifications"] = {
            "webhooks": [webhook("oncall", "json"), webhook("chat", "slack", format="slack")],
            "confirm": [webhook("freeze", "confirm")],
        }
        stable = promoted_first(releases, doc)
        releases.patch(NAME, new_version("v2"))
        status = releases.wait(
            NAME,
            "a confirm webhook refuses canary-10",
            lambda s: "HTTP 403" in (s.get("message") or ""),
        )
        assert status["stage"]["name"] == "canary-10" and "startedAt" not in status["stage"]
        assert "freeze (HTTP 403: change freeze until the on-call says so)" in status["message"]
        candidate = status["candidateRevision"]
        time.sleep(5)  # longer than a stage: it would have moved on
        assert releases.route_state(NAME) == (((stable, 99), (candidate, 1)), None, 0)
        frozen["canary-10"] = False
        promoted(releases, doc, "v2")

        releases.patch(NAME, new_version("v3"))
        releases.wait(NAME, "shadow", lambda s: (s.get("stage") or {}).get("startedAt"))
        aborted = cli(installed, "abort", NAME, "-n", releases.namespace, "--reason", "bad tone")
        assert aborted.returncode == 0, aborted.stderr
        releases.wait_phase(NAME, "RolledBack", timeout=30)
        wait_until(
            "both webhooks have everything",
            lambda: all(delivered(releases, hook) for hook in ("oncall", "chat")),
            30,
        )

        sent = first_seen(receiver.bodies("/oncall"))
        reasons = [b["reason"] for b in sent]
        walk = [*WALK[:5], "AwaitingConfirmation", *WALK[5:]]
        assert reasons == ["Promoted", *walk, "RolloutStarted", "StageStarted", "RolledBack"]
        assert [b["sequence"] for b in sent] == list(range(1, len(sent) + 1))
        uid = releases.get(NAME)["metadata"]["uid"]
        assert {b["release"]["uid"] for b in sent} == {uid}
        started = [b for b in sent if b["reason"] == "StageStarted"]
        assert [(b["stage"]["name"], b["candidateRevision"]) for b in started[:4]] == [
            (stage, candidate) for stage in ("shadow", "canary-1", "canary-10", "full")
        ]
        waiting = sent[reasons.index("AwaitingConfirmation")]
        assert waiting["type"] == "Warning" and "change freeze" in waiting["message"]
        rolled = sent[-1]
        assert rolled["type"] == "Warning" and "bad tone" in rolled["message"]
        assert rolled["phase"] == "RolledBack" and rolled["stableRevision"] == candidate

        chat = first_seen_slack(receiver.bodies("/chat"))
        assert len(chat) == len(sent)
        assert chat[-1]["text"].startswith(f"*{releases.namespace}/{NAME}* RolledBack:")
        assert chat[-1]["attachments"][0]["color"] == "danger"
        asked = [b["stage"]["name"] for b in receiver.bodies("/confirm")]
        assert asked[:2] == ["shadow", "canary-1"] and asked.count("canary-10") == 1
        assert releases.status(NAME)["notifications"].get("pending") in (None, [])
    finally:
        receiver.stop()


def first_seen_slack(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for body in bodies:
        seen.setdefault(body["attachments"][0]["footer"], body)
    return list(seen.values())


def test_a_receiver_that_is_down_gets_everything_once_back_across_a_restart_and_holds_up_nothing(
    releases: Releases, operator: OperatorProcess
):
    receiver = WebhookReceiver()  # not started: its port refuses connections
    with HungServer() as hung:
        hook_secret(releases, {"json": receiver.url("/oncall"), "hung": hung.url})
        doc = release_doc(stage_seconds=3)
        doc["spec"]["notifications"] = {
            "webhooks": [webhook("oncall", "json"), webhook("hung", "hung", timeout="2s")]
        }
        promoted_first(releases, doc)
        releases.patch(NAME, new_version("v2"))
        status = promoted(releases, doc, "v2")
        hooks = status["notifications"]["webhooks"]
        # The whole walk went through while neither receiver took a single notification.
        assert hooks["oncall"]["delivered"] == 0 and hooks["hung"]["delivered"] == 0
        assert hooks["oncall"]["error"].startswith("ConnectError"), hooks
        assert "failingSince" in hooks["oncall"]
        wait_until(
            "the hung receiver's timeout is in status",
            lambda: (
                "Timeout"
                in (releases.status(NAME)["notifications"]["webhooks"]["hung"].get("error") or "")
            ),
            30,
        )
        walked = status["notifications"]["sequence"]
        assert walked == 1 + len(WALK)

        receiver.start()  # back after a while: retried with backoff, no restart needed
        try:
            wait_until("the receiver caught up", lambda: delivered(releases, "oncall"), 45)
            assert "error" not in releases.status(NAME)["notifications"]["webhooks"]["oncall"]
            receiver.stop()  # down again, and the operator goes down too
            releases.patch(NAME, new_version("v3"))
            promoted(releases, doc, "v3")
            operator.kill()
            receiver.start()
            time.sleep(3)
            assert len(first_seen(receiver.bodies("/oncall"))) == walked, "no operator, no news"
            operator.start()
            wait_until("caught up after the restart", lambda: delivered(releases, "oncall"), 60)
        finally:
            receiver.stop()

    sent = first_seen(receiver.bodies("/oncall"))
    assert [b["sequence"] for b in sent] == list(range(1, 2 * len(WALK) + 2))
    assert [b["reason"] for b in sent] == ["Promoted", *WALK, *WALK]
    times = [b["time"] for b in sent]
    assert times == sorted(times)
