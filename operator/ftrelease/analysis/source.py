"""Where metric values come from: one small protocol, one file per provider (prometheus.py), like
Argo Rollouts' metric providers."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class MetricError(Exception):
    """The source could not answer: unreachable, a bad query, or a result of the wrong shape.
    Analysis turns it into the Error outcome (hold, never promote), never into Fail."""


class MetricSource(Protocol):
    def query(self, promql: str, at: datetime | None = None) -> float | None:
        """The query's single scalar value at `at` (None: now); None when it matched no series
        (no data). Raises MetricError for anything else."""
