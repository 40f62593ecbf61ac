"""Why a revision's pods are not available, in one line an on-call engineer can act on, read
from what the scheduler and the kubelet wrote: the pods' conditions and container states, and
the Events on them (a readiness probe's failure). Pure: the caller lists pods and Events."""

from __future__ import annotations

from typing import Any

# Container waiting reasons that are a problem rather than a step of starting.
PROBLEM_WAITING = {
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}
EVENT_REASONS = ("Unhealthy", "FailedMount", "FailedScheduling", "BackOff", "Failed")


def pod_problem(pods: list[dict[str, Any]]) -> str | None:
    """What the pods' own status says, most telling first: unschedulable (the scheduler's
    message), then a container that cannot start or keeps crashing (with its last exit)."""
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                reason = condition.get("reason") or "Unschedulable"
                return f"pod {name} {reason}: {condition.get('message', '')}".strip()
        containers = (status.get("initContainerStatuses") or []) + (
            status.get("containerStatuses") or []
        )
        for container in containers:  # an init container that fails says why first
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in PROBLEM_WAITING:
                last = ((container.get("lastState") or {}).get("terminated")) or {}
                detail = waiting.get("message") or ""
                if last:
                    detail += f" (last exit code {last.get('exitCode')}" + (
                        f": {last['message'].strip()})" if last.get("message") else ")"
                    )
                return f"pod {name} container {container['name']} {waiting['reason']}: {detail}"
    return None


def event_problem(events: list[dict[str, Any]]) -> str | None:
    """The newest warning Event on the pods (a failed readiness probe says why the server is
    not ready)."""
    warnings = [
        e for e in events if e.get("type") == "Warning" and e.get("reason") in EVENT_REASONS
    ]
    if not warnings:
        return None
    newest = max(warnings, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    pod = (newest.get("involvedObject") or {}).get("name", "")
    return f"pod {pod} {newest['reason']}: {newest.get('message', '')}"
