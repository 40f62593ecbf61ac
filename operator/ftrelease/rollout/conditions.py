"""The release's kstatus conditions (Ready, Reconciling, Stalled, Analysis), derived from its
status after each Decision. Pure."""

from __future__ import annotations

from datetime import datetime

from ftrelease.api.status import Condition, FineTuneReleaseStatus


def conditions(status: FineTuneReleaseStatus, revision: str, now: datetime) -> list[Condition]:
    """kstatus conditions: Ready (the spec's bundle serves all traffic), Reconciling (a rollout
    is under way, paused included), Stalled (it cannot move on without a person: Gated, rolled
    back, held, past its progress deadline); and, while a candidate is being
    analysed, Analysis (False when its metrics cannot be measured)."""
    phase = status.phase or "Pending"
    ready = phase in ("Promoted", "RolledBack") and status.stable_revision == revision
    held = phase == "Paused" and status.stage is not None and status.stage.hold is not None
    # Paused (by a person or spec.paused) is not done either: kstatus reads it InProgress.
    reconciling = phase in ("Pending", "Shadow", "Progressing") or (phase == "Paused" and not held)
    stalled = phase in ("Gated", "Failed") or (phase == "RolledBack" and not ready) or held
    previous = {c.type: c for c in status.conditions}

    def condition(kind: str, value: bool, reason: str, message: str | None = None) -> Condition:
        text = "True" if value else "False"
        before = previous.get(kind)
        changed = before is None or before.status != text
        return Condition(
            type=kind,
            status=text,
            reason=reason,
            message=(status.message or "") if message is None else message,
            last_transition_time=now if changed else before.last_transition_time,
            observed_generation=status.observed_generation,
        )

    found = [
        condition("Ready", ready, phase),
        condition("Reconciling", reconciling, phase if reconciling else "Idle"),
        condition(
            "Stalled",
            stalled,
            (_held_reason(status) if held else phase)
            if stalled
            else "Progressing"
            if reconciling
            else "Idle",
        ),
    ]
    if status.stage is not None and status.analysis:
        errors = [r for r in status.analysis if r.outcome == "Error"]
        if errors:
            found.append(
                condition(
                    "Analysis",
                    False,
                    "MetricsUnavailable",
                    "; ".join(f"{r.metric}: {r.message}" for r in errors),
                )
            )
        else:
            order = ("Fail", "Inconclusive", "NoData", "Pass")
            worst = min(status.analysis, key=lambda r: order.index(r.outcome))
            found.append(condition("Analysis", True, worst.outcome, worst.message or ""))
    return found


def _held_reason(status: FineTuneReleaseStatus) -> str:
    assert status.stage is not None
    return "ProgressDeadlineExceeded" if status.stage.deadline_exceeded else "Held"
