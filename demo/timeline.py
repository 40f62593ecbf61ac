"""The demo's record of each rollout over time, and its PNG: the candidate's share of traffic
(weight and mirror, as the route says) above each metric's candidate and stable rates (as the
operator's analysis measured them)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Point:
    seconds: float
    rollout: str
    weight: float  # % of requests the candidate answers
    mirror: float  # % of requests copied to it
    rates: dict[str, tuple[float | None, float | None]]  # metric -> (candidate, stable)


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    points: list[Point] = field(default_factory=list)
    ends: list[tuple[float, str]] = field(default_factory=list)  # (seconds, what happened)

    def record(self, rollout: str, candidate: str, status: dict[str, Any], routing: Any) -> None:
        backend = f"-{candidate}"
        total = sum(w for _, w in routing.weights) or 1
        weight = sum(w for name, w in routing.weights if name.endswith(backend))
        mirror = routing.mirror_percent if (routing.mirror or "").endswith(backend) else 0.0
        rates = {
            r["metric"]: (r.get("value"), r.get("stableValue"))
            for r in status.get("analysis") or []
            if r.get("value") is not None
        }
        seconds = time.monotonic() - self.started
        self.points.append(Point(seconds, rollout, 100 * weight / total, mirror, rates))

    def mark(self, what: str) -> None:
        self.ends.append((time.monotonic() - self.started, what))

    def save(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        metrics = sorted({m for p in self.points for m in p.rates})
        fig, axes = plt.subplots(
            1 + len(metrics), 1, figsize=(10, 3 + 2.2 * len(metrics)), sharex=True
        )
        axes = list(axes) if len(metrics) else [axes]
        seconds = [p.seconds for p in self.points]
        traffic = axes[0]
        traffic.step(seconds, [p.weight for p in self.points], where="post", label="weight")
        traffic.step(
            seconds, [p.mirror for p in self.points], where="post", label="mirror", linestyle="--"
        )
        traffic.set_ylabel("candidate's traffic (%)")
        traffic.set_ylim(-5, 105)
        for ax, metric in zip(axes[1:], metrics, strict=True):
            for index, side in enumerate(("candidate", "stable")):
                ax.plot(
                    seconds,
                    [_pct((p.rates.get(metric) or (None, None))[index]) for p in self.points],
                    label=side,
                )
            ax.set_ylabel(f"{metric} (%)")
        for ax in axes:
            for at, _ in self.ends:
                ax.axvline(at, color="grey", linewidth=0.8)
            ax.legend(loc="upper left", fontsize=8)
        for at, what in self.ends:
            traffic.annotate(what, (at, 100), rotation=90, fontsize=8, va="top", ha="right")
        rollouts = []
        for p in self.points:
            if not rollouts or rollouts[-1][1] != p.rollout:
                rollouts.append((p.seconds, p.rollout))
        for at, rollout in rollouts:
            traffic.annotate(rollout, (at, 50), fontsize=8)
        axes[-1].set_xlabel("seconds since the demo started")
        fig.suptitle("support-bot: traffic to each candidate and its metrics")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def _pct(value: float | None) -> float:
    return float("nan") if value is None else 100 * value
