"""The operator's own metrics (prometheus-client), served on --metrics-port."""

from __future__ import annotations

import contextlib
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from ftrelease.api.models import FineTuneReleaseStatus, Phase
from ftrelease.api.ownership import ReleaseRef
from ftrelease.rollout.types import Decision

RECONCILE_SECONDS = Histogram(
    "ftrelease_reconcile_duration_seconds", "Time to reconcile one release."
)
TRANSITIONS = Counter(
    "ftrelease_phase_transitions_total", "Phase changes.", ["namespace", "release", "phase"]
)
ROLLBACKS = Counter("ftrelease_rollbacks_total", "Rollbacks to stable.", ["namespace", "release"])
ROUTE_WRITES = Counter("ftrelease_route_writes_total", "Route writes.", ["namespace", "release"])
RELEASES = Gauge(
    "ftrelease_releases",
    "Releases by phase (1 for the current phase).",
    ["namespace", "release", "phase"],
)

PHASES = get_args(Phase)


def record(ref: ReleaseRef, before: FineTuneReleaseStatus, decision: Decision | None) -> None:
    if decision is None:
        return
    phase = decision.status.phase
    if phase != before.phase and phase is not None:
        TRANSITIONS.labels(ref.namespace, ref.name, phase).inc()
        if phase == "RolledBack":
            ROLLBACKS.labels(ref.namespace, ref.name).inc()
    for name in PHASES:
        RELEASES.labels(ref.namespace, ref.name, name).set(1 if name == phase else 0)


def forget(namespace: str, release: str) -> None:
    for name in PHASES:
        with contextlib.suppress(KeyError):
            RELEASES.remove(namespace, release, name)
