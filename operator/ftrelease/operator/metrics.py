"""The operator's own metrics (prometheus-client), served on --metrics-port."""

from __future__ import annotations

import contextlib
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from ftrelease.api.ownership import ReleaseRef
from ftrelease.api.status import FineTuneReleaseStatus, Phase
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

ANALYSIS_EVIDENCE = Gauge(
    "ftrelease_analysis_evidence",
    "The candidate's e-value per sequential metric (Fail at 1 / (alpha / metrics)).",
    ["namespace", "release", "metric"],
)
ANALYSIS_ERRORS = Counter(
    "ftrelease_analysis_errors_total",
    "Analysis attempts that could not measure (Prometheus down, bad query).",
    ["namespace", "release"],
)

NOTIFICATIONS = Counter(
    "ftrelease_notifications_total",
    "Webhook notifications by result (sent, failed attempts).",
    ["namespace", "release", "result"],
)

LEADER = Gauge("ftrelease_leader", "1 while this replica holds the lease and reconciles.")

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
    stage = decision.status.stage
    if stage is not None and stage.errors > (before.stage.errors if before.stage else 0):
        ANALYSIS_ERRORS.labels(ref.namespace, ref.name).inc()
    for result in decision.status.analysis:
        if result.evidence is not None:
            ANALYSIS_EVIDENCE.labels(ref.namespace, ref.name, result.metric).set(result.evidence)


def forget(namespace: str, release: str) -> None:
    for name in PHASES:
        with contextlib.suppress(KeyError):
            RELEASES.remove(namespace, release, name)
