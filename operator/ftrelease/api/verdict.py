"""What analysis says about the current stage, as the planner takes it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageVerdict:
    """`passed` lets the stage complete; `failed` rolls back at once with `reason`. Without
    analysis a stage completes on its clock (the default)."""

    passed: bool = True
    failed: bool = False
    reason: str = ""
