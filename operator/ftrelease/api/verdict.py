"""What analysis tells the planner about the current stage, and the Events both of them emit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .status import MetricResult


@dataclass(frozen=True)
class StageVerdict:
    """`passed` lets the stage complete (with its clock and approval); `failed` rolls back at
    once with `reason`; `error` means the metrics could not be measured: hold, never promote,
    and after onError.after do onError.action. `analyzed` is False when the operator runs without
    analysis: stages then complete on their clocks."""

    passed: bool = True
    failed: bool = False
    error: bool = False
    analyzed: bool = True
    pending: bool = False  # a due window is being measured: no Inconclusive until it is in
    reason: str = ""


NO_ANALYSIS = StageVerdict(
    analyzed=False, reason="analysis off: the operator runs without --prometheus-url"
)


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def inconclusive(results: list[MetricResult]) -> list[MetricResult]:
    """Once a stage has run out of time, metrics still short of samples read Inconclusive."""
    return [
        r.model_copy(update={"outcome": "Inconclusive"}) if r.outcome == "NoData" else r
        for r in results
    ]
