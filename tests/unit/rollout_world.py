"""Specs for driving whole rollouts through the cycle on the in-memory world
(ftrelease.rollout.world), which `kubectl finetune simulate` uses too. The e2e tests run the same
cycle in the operator on the real control plane."""

from __future__ import annotations

import copy
from typing import Any

from ftrelease.analysis.evaluate import Measurement
from ftrelease.analysis.judges import Counts
from ftrelease.api.resource import FineTuneRelease
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.rollout.world import T0, World

from tests.api_cases import load_example

__all__ = ["T0", "Counted", "World", "spec_with", "with_bundle_version"]


def spec_with(**changes: Any) -> FineTuneReleaseSpec:
    """The support-bot example with short stages and the given spec changes (dotted keys)."""
    doc = load_example()
    doc["spec"]["strategy"]["stages"] = [
        {"name": "shadow", "mirror": 100, "duration": "1m"},
        {"name": "canary-1", "weight": 1, "duration": "1m"},
        {"name": "canary-10", "weight": 10, "duration": "1m"},
        {"name": "full", "weight": 100, "duration": "1m"},
    ]
    for dotted, value in changes.items():
        target = doc["spec"]
        *parents, leaf = dotted.split(".")
        for part in parents:
            target = target[part]
        target[leaf] = value
    return FineTuneRelease.model_validate(doc).spec


def with_bundle_version(spec: FineTuneReleaseSpec, version: str) -> FineTuneReleaseSpec:
    """The same spec with another dataset version: a new revision."""
    changed = copy.deepcopy(spec)
    changed.bundle.dataset.version = version
    return FineTuneReleaseSpec.model_validate(changed.to_wire())


class Counted:
    """Answers each window with counts proportional to its length; records the windows."""

    def __init__(self, candidate_rate: float, stable_rate: float = 0.01, rps: float = 10):
        self.rates = (candidate_rate, stable_rate)
        self.rps = rps
        self.windows: list[str] = []
        self.error: str | None = None

    def __call__(self, metric, variables) -> Measurement:
        if self.error:
            return Measurement(error=self.error)
        self.windows.append(variables["interval"])
        seconds = int(variables["interval"].removesuffix("s"))
        n = self.rps * seconds / 2
        return Measurement(
            Counts(self.rates[0] * n, n) if self.rates[0] is not None else Counts(0, 0),
            Counts(self.rates[1] * n, n),
        )
