"""The eval gate: whether a candidate's eval scores let it into production. Pure.

Scores are compared like with like: a candidate's measured scores against the stable's measured
scores from the same suite and version (declared scores against declared ones where the bundle
runs no evals). Anything that cannot be compared fails closed: a score the gate names that a
side lacks, or a stable measured on another suite or version (unless the release accepts that).
A declared score that the measurement contradicts is reported, not judged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ftrelease.api.spec import EvalGate

EPSILON = 1e-12  # scores are equal within float noise: 0.91 - 0.9 is not above 0.01

Source = Literal["measured", "declared"]


@dataclass(frozen=True)
class Scores:
    """One revision's scores on one suite and version."""

    revision: str
    suite: str
    version: str
    values: Mapping[str, float]
    source: Source

    @property
    def measured_on(self) -> str:
        return f"{self.suite} {self.version} ({self.source})"

    def comparable(self, other: Scores) -> bool:
        return (self.suite, self.version, self.source) == (other.suite, other.version, other.source)


@dataclass(frozen=True)
class Check:
    """One rule of the gate applied to one score."""

    score: str
    rule: str  # minScores | maxScores | maxRegression | maxIncrease
    limit: float
    candidate: float | None
    stable: float | None = None
    passed: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str  # the first failure, or what passed
    comparable: bool | None  # None: no comparison with the stable was asked for
    checks: list[Check] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)  # declared vs measured, beyond tolerance


def judge(
    gate: EvalGate,
    candidate: Scores,
    stable: Scores | None,
    *,
    stable_revision: str | None,
    declared: Mapping[str, float] | None = None,
) -> Verdict:
    """The gate's verdict on `candidate` against the stable revision's scores (`stable`; None:
    it has none). `stable_revision` None: the first release, with nothing to compare against.
    `declared`: the bundle's declared scores, checked against measured ones."""
    compared = stable_revision is not None and bool(gate.max_regression or gate.max_increase)
    checks = _bounds(gate, candidate)
    comparable = None
    if compared:
        comparable = stable is not None and candidate.comparable(stable)
        checks += _comparisons(gate, candidate, stable, stable_revision or "")
    mismatches = _mismatches(gate, candidate, declared or {})
    failed = [c for c in checks if not c.passed]
    if failed:
        return Verdict(False, failed[0].reason, comparable, checks, mismatches)
    if comparable is False:  # and accepted: said so, since nothing was compared
        reason = (
            "passed without comparison with the stable: "
            f"{_incomparable(candidate, stable, stable_revision or '')}, accepted by "
            "gate.evals.acceptIncomparable"
        )
    elif checks:
        reason = f"{len(checks)} checks passed on {candidate.measured_on}"
    else:
        reason = f"nothing to check on {candidate.measured_on}"
    return Verdict(True, reason, comparable, checks, mismatches)


def _bounds(gate: EvalGate, candidate: Scores) -> list[Check]:
    checks = []
    for rule, limits, sign in (
        ("minScores", gate.min_scores, 1),
        ("maxScores", gate.max_scores, -1),
    ):
        for name, limit in sorted(limits.items()):
            value = candidate.values.get(name)
            if value is None:
                reason = f"eval {name} is missing from the candidate's {candidate.measured_on}"
                checks.append(Check(name, rule, limit, None, reason=reason))
                continue
            passed = sign * (value - limit) >= -EPSILON
            word = "below the gate's minimum" if sign > 0 else "above the gate's maximum"
            reason = (
                f"eval {name} = {value:.4g} is within {rule} {limit}"
                if passed
                else f"eval {name} = {value:.4g} is {word} {limit} ({candidate.measured_on})"
            )
            checks.append(Check(name, rule, limit, value, passed=passed, reason=reason))
    return checks


def _comparisons(
    gate: EvalGate, candidate: Scores, stable: Scores | None, stable_revision: str
) -> list[Check]:
    rules = [("maxRegression", gate.max_regression, 1), ("maxIncrease", gate.max_increase, -1)]
    if stable is None or not candidate.comparable(stable):
        if gate.accept_incomparable:
            return []
        reason = (
            f"not comparable: {_incomparable(candidate, stable, stable_revision)}; measure "
            "both on one suite and version, or set gate.evals.acceptIncomparable"
        )
        name, limit = next((n, v) for _, limits, _ in rules for n, v in sorted(limits.items()))
        return [Check(name, "comparable", limit, None, reason=reason)]
    checks = []
    for rule, limits, sign in rules:
        for name, allowed in sorted(limits.items()):
            mine, theirs = candidate.values.get(name), stable.values.get(name)
            if mine is None or theirs is None:
                side = "candidate's" if mine is None else f"stable's ({stable.revision})"
                reason = f"eval {name} is missing from the {side} {candidate.measured_on}"
                checks.append(Check(name, rule, allowed, mine, theirs, reason=reason))
                continue
            change = sign * (theirs - mine)  # how much worse the candidate is
            passed = change <= allowed + EPSILON
            what = "regresses" if sign > 0 else "rises"
            reason = (
                f"eval {name} = {mine:.4g} against stable's {theirs:.4g}: within {rule} {allowed}"
                if passed
                else f"eval {name} = {mine:.4g} {what} {abs(change):.4g} from stable's "
                f"{theirs:.4g} (allowed {allowed}; {candidate.measured_on})"
            )
            checks.append(Check(name, rule, allowed, mine, theirs, passed, reason))
    return checks


def _mismatches(gate: EvalGate, candidate: Scores, declared: Mapping[str, float]) -> list[str]:
    if candidate.source != "measured":
        return []
    found = []
    for name, said in sorted(declared.items()):
        value = candidate.values.get(name)
        if value is None:
            found.append(f"{name}: declared {said:.4g}, not measured by the suite")
        elif abs(value - said) > gate.tolerance + EPSILON:
            found.append(
                f"{name}: declared {said:.4g}, measured {value:.4g} "
                f"(differs by {abs(value - said):.4g}, tolerance {gate.tolerance})"
            )
    return found


def _incomparable(candidate: Scores, stable: Scores | None, stable_revision: str) -> str:
    if stable is None:
        return (
            f"the candidate's scores are from {candidate.measured_on}; the stable "
            f"({stable_revision}) has no result to compare"
        )
    return (
        f"the candidate's scores are from {candidate.measured_on}, the stable's "
        f"({stable.revision}) from {stable.measured_on}"
    )
