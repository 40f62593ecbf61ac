"""Why a revision's pods are not available, as the operator reads it from pod status and Events
(shapes as the scheduler and the kubelet write them)."""

from __future__ import annotations

from ftrelease.operator.pods import event_problem, pod_problem


def pod(name: str, **status) -> dict:
    return {"metadata": {"name": name}, "status": status}


def test_unschedulable_names_the_schedulers_message():
    pending = pod(
        "bot-b",
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
            }
        ],
    )
    running = pod("bot-a", phase="Running", conditions=[{"type": "Ready", "status": "True"}])
    assert pod_problem([running, pending]) == (
        "pod bot-b Unschedulable: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    )


def test_a_crash_loop_says_the_last_exit():
    crashing = pod(
        "bot-a",
        containerStatuses=[
            {
                "name": "model",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {
                    "terminated": {"exitCode": 1, "message": "no such file: /models/x\n"}
                },
            }
        ],
    )
    assert pod_problem([crashing]) == (
        "pod bot-a container model CrashLoopBackOff: back-off 40s "
        "(last exit code 1: no such file: /models/x)"
    )


def test_a_server_that_is_not_ready_is_told_by_its_newest_probe_event():
    starting = pod(
        "bot-a",
        containerStatuses=[{"name": "model", "state": {"running": {}}, "ready": False}],
    )
    events = [
        {
            "type": "Warning",
            "reason": "Unhealthy",
            "message": "Readiness probe failed: connection refused",
            "lastTimestamp": "2026-12-01T10:00:00Z",
            "involvedObject": {"name": "bot-a"},
        },
        {
            "type": "Warning",
            "reason": "Unhealthy",
            "message": "Readiness probe failed: HTTP probe failed with statuscode: 503: digest mismatch",
            "lastTimestamp": "2026-12-01T10:00:09Z",
            "involvedObject": {"name": "bot-a"},
        },
        {
            "type": "Normal",
            "reason": "Started",
            "message": "Started container model",
            "lastTimestamp": "2026-12-01T10:00:30Z",
            "involvedObject": {"name": "bot-a"},
        },
    ]
    assert pod_problem([starting]) is None
    assert event_problem(events) == (
        "pod bot-a Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503: "
        "digest mismatch"
    )
    assert event_problem([]) is None
