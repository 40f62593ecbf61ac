"""Operator settings, from the command line (see ftrelease.__main__) or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(f"FTRELEASE_{name}", default)


@dataclass
class OperatorConfig:
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    # Every release is re-decided from the cache this often (no API reads); watch events and
    # each release's own clocks (requeue_after) are what move rollouts.
    resync: float = float(_env("RESYNC_SECONDS", "600"))
    workers: int = int(_env("WORKERS", "8"))  # releases reconciled at once
    measure_workers: int = int(_env("MEASURE_WORKERS", "8"))  # Prometheus measurements at once
    metrics_port: int = int(_env("METRICS_PORT", "8080"))
    metrics_address: str = _env("METRICS_ADDRESS", "0.0.0.0")
    liveness_port: int = int(_env("LIVENESS_PORT", "8081"))
    # Without Prometheus there is no analysis: stages complete on their clocks and approvals.
    prometheus_url: str = _env("PROMETHEUS_URL", "")
    # Leader election: one replica leads; see operator/leader.py for why writes are safe.
    lease_namespace: str = os.environ.get("POD_NAMESPACE") or _env(
        "LEASE_NAMESPACE", "finetune-system"
    )
    lease_name: str = _env("LEASE_NAME", "finetune-release-operator")
    # Whole seconds (the client's LeaderElection takes ints): failover within about
    # lease_duration + retry_period of the leader's last renewal.
    lease_duration: int = int(_env("LEASE_DURATION_SECONDS", "10"))
    renew_deadline: int = int(_env("RENEW_DEADLINE_SECONDS", "6"))
    retry_period: int = int(_env("RETRY_PERIOD_SECONDS", "2"))


CONFIG = OperatorConfig()
