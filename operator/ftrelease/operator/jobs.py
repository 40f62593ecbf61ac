"""What an eval Job's status and its pod say: running, or ended with the evaluator's result, or
failed and why. Pure: the caller reads the Job (watch cache) and, once it ended, its pods."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

State = Literal["Running", "Succeeded", "Failed"]
LOG_TAIL = 400  # characters of a failed pod's message (its last log lines) kept in the reason


def job_state(job: dict[str, Any]) -> tuple[State, str, datetime | None, datetime | None]:
    """(state, why it failed, started, finished) from the Job controller's final conditions
    (Complete, Failed; not the interim SuccessCriteriaMet or FailureTarget)."""
    status = job.get("status") or {}
    started = _time(status.get("startTime"))
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        at = _time(condition.get("lastTransitionTime"))
        if condition.get("type") == "Complete":
            return "Succeeded", "", started, _time(status.get("completionTime")) or at
        if condition.get("type") == "Failed":
            why = f"{condition.get('reason') or 'Failed'}: {condition.get('message') or ''}"
            return "Failed", why.strip().rstrip(":"), started, at
    return "Running", "", started, None


def termination_message(pods: list[dict[str, Any]], succeeded: bool) -> str | None:
    """The evaluator container's termination message: the succeeded pod's (its result), or the
    newest failed pod's (FallbackToLogsOnError: its last log lines). None: no such pod."""
    wanted = "Succeeded" if succeeded else "Failed"
    ended = [p for p in pods if (p.get("status") or {}).get("phase") == wanted]
    for pod in sorted(
        ended, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True
    ):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if "message" in terminated:
                return terminated["message"]
    return None


def failure_reason(why: str, pods: list[dict[str, Any]]) -> str:
    last = termination_message(pods, succeeded=False)
    if not last:
        return why
    return f"{why}; the evaluator said: {last.strip()[-LOG_TAIL:]}"


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None
