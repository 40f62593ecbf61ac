"""Operator settings, from the command line (see ftrelease.__main__) or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class OperatorConfig:
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    interval: float = float(os.environ.get("FTRELEASE_RESYNC_SECONDS", "10"))
    metrics_port: int = int(os.environ.get("FTRELEASE_METRICS_PORT", "8080"))
    metrics_address: str = os.environ.get("FTRELEASE_METRICS_ADDRESS", "0.0.0.0")
    liveness_port: int = int(os.environ.get("FTRELEASE_LIVENESS_PORT", "8081"))
    # Without Prometheus there is no analysis: stages complete on their clocks and approvals.
    prometheus_url: str = os.environ.get("FTRELEASE_PROMETHEUS_URL", "")


CONFIG = OperatorConfig()
