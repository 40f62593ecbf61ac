"""The eval gate: whether a bundle's offline eval scores let it into production. Pure."""

from __future__ import annotations

import math

from ftrelease.api.spec import FineTuneReleaseSpec


def gate_problem(spec: FineTuneReleaseSpec, stable_bundle: dict | None) -> str | None:
    """Why the bundle's offline evals keep it out of production, or None."""
    scores = spec.bundle.evals.scores
    for name, minimum in sorted(spec.gate.evals.min_scores.items()):
        if scores.get(name, -math.inf) < minimum:
            return f"eval {name} = {scores.get(name)} is below the gate's minimum {minimum}"
    stable_scores = ((stable_bundle or {}).get("evals") or {}).get("scores") or {}
    for name, allowed in sorted(spec.gate.evals.max_regression.items()):
        if name in stable_scores and name in scores:
            drop = stable_scores[name] - scores[name]
            if drop > allowed + 1e-12:
                return (
                    f"eval {name} = {scores[name]} regresses {drop:.4g} from stable's "
                    f"{stable_scores[name]} (allowed {allowed})"
                )
    return None
