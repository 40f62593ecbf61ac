"""kubectl finetune against the local control plane: `status` (every release of a namespace or
of all, one release's stage with the time it has left, JSON for scripts, --watch) and `promote`
(the current stage now, or --full straight to 100%, recorded with who asked)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import pytest

from tests.cluster.processes import wait_until
from tests.e2e.conftest import Releases, new_version, release_doc
from tests.e2e.test_rollout import NAME, promoted_first

pytestmark = pytest.mark.e2e


def finetune(installed, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ftrelease.cli.main",
        *args,
        "--kubeconfig",
        str(installed.kubeconfig),
    ]


def run(installed, *args: str) -> str:
    result = subprocess.run(finetune(installed, *args), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_status_lists_releases_shows_time_left_and_watches(installed, releases: Releases):
    namespace = releases.namespace
    stable = promoted_first(releases, release_doc(stage_seconds=40))
    releases.patch(NAME, new_version("v2"))
    releases.wait(NAME, "shadow started", lambda s: (s.get("stage") or {}).get("startedAt"))

    listed = run(installed, "status", "-n", namespace)
    [row] = [line for line in listed.splitlines() if NAME in line]
    assert "Shadow" in row and "shadow" in row and "mirror 100%" in row and stable in row
    everywhere = run(installed, "status", "-A")
    assert any(namespace in line and NAME in line for line in everywhere.splitlines())

    shown = run(installed, "status", NAME, "-n", namespace)
    assert "stage 0: shadow, mirror 100%" in shown and "of 40s left" in shown

    document = json.loads(run(installed, "status", NAME, "-n", namespace, "-o", "json"))
    assert document["kind"] == "FineTuneRelease" and document["status"]["phase"] == "Shadow"
    listing = json.loads(run(installed, "status", "-n", namespace, "-o", "json"))
    assert [i["metadata"]["name"] for i in listing["items"]] == [NAME]

    # --watch shows the release again when it changes, until interrupted.
    watcher = subprocess.Popen(
        finetune(installed, "status", NAME, "-n", namespace, "--watch"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as at a terminal: a run in the background (CI) would pass SIGINT on ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watcher.stdout), daemon=True)
    reader.start()

    def views() -> list[str]:
        return "".join(lines).split("phase ")[1:]

    try:
        wait_until("the first view", lambda: views(), 60)
        releases.patch(NAME, {"spec": {"paused": True}})
        wait_until("paused", lambda: releases.status(NAME).get("phase") == "Paused", 30)
        wait_until("a view of the pause", lambda: any(v.startswith("Paused") for v in views()), 30)
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=30)
        reader.join(timeout=10)
    assert watcher.returncode == 0, watcher.stderr.read()
    shown = views()
    assert shown[0].startswith("Shadow") and any(v.startswith("Paused") for v in shown[1:]), shown


def test_promote_completes_the_stage_and_promote_full_goes_to_100(installed, releases: Releases):
    namespace = releases.namespace
    stable = promoted_first(releases, release_doc(stage_seconds=600))
    releases.patch(NAME, new_version("v2"))
    status = releases.wait(NAME, "shadow", lambda s: (s.get("stage") or {}).get("startedAt"))
    candidate = status["candidateRevision"]
    assert releases.route_state(NAME) == (((stable, 100), (candidate, 0)), candidate, 100)

    said = run(installed, "promote", NAME, "-n", namespace)
    assert "completion of the current stage requested" in said
    releases.wait_route(NAME, (((stable, 99), (candidate, 1)), None, 0))
    assert releases.status(NAME)["stage"]["name"] == "canary-1"
    [moved] = releases.wait_event(NAME, "MovedOn")
    assert moved == "stage shadow completed by admin (kubectl finetune promote)"

    run(installed, "promote", NAME, "--full", "-n", namespace)
    status = releases.wait(NAME, "promoted", lambda s: s.get("stableRevision") == candidate)
    assert status["phase"] == "Promoted"
    releases.wait_route(NAME, (((candidate, 100),), None, 0))
    assert status["history"][0]["reason"] == (
        "stage shadow completed by admin (kubectl finetune promote); promoted to full (100%) "
        "from stage canary-1 by admin (kubectl finetune promote)"
    )


@pytest.mark.parametrize("command", ["status", "samples", "failures", "pause", "evals"])
def test_a_release_that_is_not_there_is_named_not_a_traceback(installed, namespace, command):
    result = subprocess.run(
        finetune(installed, command, "suport-bot", "-n", namespace),
        capture_output=True,
        text=True,
        check=False,
    )
    if command == "failures":  # no release needed: the records are listed by label
        assert result.returncode == 0 and "suport-bot: no incident records" in result.stderr
        return
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        'error: finetunereleases.finetune.dev "suport-bot" not found'
    ), result.stderr
