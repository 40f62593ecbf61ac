"""The eval gate's comparison rules (rollout.gate): like with like, fail closed, tolerance."""

from __future__ import annotations

from ftrelease.api.spec import EvalGate
from ftrelease.rollout.gate import Scores, judge
from hypothesis import given
from hypothesis import strategies as st

NAMES = st.sampled_from(["accuracy", "format_valid", "refusal_rate", "exact_match"])
SCORE = st.floats(0, 1, allow_nan=False)
LIMITS = st.dictionaries(NAMES, SCORE, max_size=3)
VALUES = st.dictionaries(NAMES, SCORE, max_size=4)


def scores(values, revision="cand", suite="qa", version="v1", source="measured") -> Scores:
    return Scores(revision, suite, version, values, source)


def test_a_score_below_its_minimum_gates_with_the_score_and_the_suite():
    verdict = judge(
        EvalGate(min_scores={"accuracy": 0.9}),
        scores({"accuracy": 0.85}),
        None,
        stable_revision=None,
    )
    assert not verdict.passed
    assert verdict.reason == (
        "eval accuracy = 0.85 is below the gate's minimum 0.9 (qa v1 (measured))"
    )


def test_a_regression_is_measured_against_the_stable_on_the_same_suite():
    gate = EvalGate(max_regression={"accuracy": 0.01}, max_increase={"refusal_rate": 0.0})
    stable = scores({"accuracy": 0.91, "refusal_rate": 0.1}, revision="stab")
    worse = judge(
        gate, scores({"accuracy": 0.85, "refusal_rate": 0.1}), stable, stable_revision="stab"
    )
    assert not worse.passed and "regresses 0.06 from stable's 0.91" in worse.reason
    refuses = judge(
        gate, scores({"accuracy": 0.95, "refusal_rate": 0.2}), stable, stable_revision="stab"
    )
    assert not refuses.passed and "refusal_rate = 0.2 rises 0.1" in refuses.reason
    within = judge(
        gate, scores({"accuracy": 0.90, "refusal_rate": 0.1}), stable, stable_revision="stab"
    )
    assert within.passed and within.comparable
    assert [c.rule for c in within.checks] == ["maxRegression", "maxIncrease"]


def test_another_suite_or_version_is_not_comparable_and_fails_closed_unless_accepted():
    gate = EvalGate(max_regression={"accuracy": 0.01})
    stable = scores({"accuracy": 0.5}, revision="stab", version="v1")
    candidate = scores({"accuracy": 0.99}, version="v2")
    verdict = judge(gate, candidate, stable, stable_revision="stab")
    assert not verdict.passed and verdict.comparable is False
    assert verdict.reason.startswith("not comparable: the candidate's scores are from qa v2")
    assert "the stable's (stab) from qa v1" in verdict.reason
    accepted = judge(
        gate.model_copy(update={"accept_incomparable": True}),
        candidate,
        stable,
        stable_revision="stab",
    )
    assert accepted.passed and accepted.comparable is False
    assert "without comparison with the stable" in accepted.reason
    declared = judge(
        gate, scores({"accuracy": 0.99}, source="declared"), stable, stable_revision="stab"
    )
    assert not declared.passed, "declared scores are not compared with measured ones"


def test_a_stable_without_any_result_is_not_comparable():
    verdict = judge(
        EvalGate(max_regression={"accuracy": 0.01}),
        scores({"accuracy": 0.99}),
        None,
        stable_revision="stab",
    )
    assert not verdict.passed and "the stable (stab) has no result to compare" in verdict.reason


def test_the_first_release_has_nothing_to_regress_from():
    verdict = judge(
        EvalGate(max_regression={"accuracy": 0.01}),
        scores({"accuracy": 0.1}),
        None,
        stable_revision=None,
    )
    assert verdict.passed and verdict.comparable is None and verdict.checks == []


def test_declared_scores_the_measurement_contradicts_are_reported_not_judged():
    verdict = judge(
        EvalGate(tolerance=0.02),
        scores({"accuracy": 0.80, "format_valid": 0.99}),
        None,
        stable_revision=None,
        declared={"accuracy": 0.91, "format_valid": 1.0, "faithfulness": 0.9},
    )
    assert verdict.passed
    assert verdict.mismatches == [
        "accuracy: declared 0.91, measured 0.8 (differs by 0.11, tolerance 0.02)",
        "faithfulness: declared 0.9, not measured by the suite",
    ]


@given(limits=LIMITS, values=VALUES)
def test_bounds_pass_exactly_when_every_named_score_is_there_and_within(limits, values):
    gate = EvalGate(min_scores=limits)
    verdict = judge(gate, scores(values), None, stable_revision=None)
    expected = all(
        name in values and values[name] >= limit - 1e-12 for name, limit in limits.items()
    )
    assert verdict.passed == expected
    assert len(verdict.checks) == len(limits)
    missing = sorted(set(limits) - set(values))
    if missing:
        assert not verdict.passed
        assert any(
            f"eval {name} is missing" in c.reason for name in missing for c in verdict.checks
        )


@given(allowed=LIMITS, mine=VALUES, theirs=VALUES, same=st.booleans(), accept=st.booleans())
def test_comparisons_fail_closed_on_anything_missing_or_incomparable(
    allowed, mine, theirs, same, accept
):
    gate = EvalGate(max_regression=allowed, accept_incomparable=accept)
    stable = scores(theirs, revision="stab", version="v1" if same else "v0")
    verdict = judge(gate, scores(mine), stable, stable_revision="stab")
    if not allowed:
        assert verdict.passed
    elif not same:
        assert verdict.passed == accept and verdict.comparable is False
    else:
        expected = all(
            name in mine and name in theirs and theirs[name] - mine[name] <= limit + 1e-12
            for name, limit in allowed.items()
        )
        assert verdict.passed == expected and verdict.comparable is True


@given(limits=LIMITS, values=VALUES, name=NAMES, gain=st.floats(0, 1))
def test_a_better_score_never_turns_a_pass_into_a_gate(limits, values, name, gain):
    gate = EvalGate(min_scores=limits, max_regression=limits)
    stable = scores({n: 0.5 for n in limits}, revision="stab")
    before = judge(gate, scores(values), stable, stable_revision="stab")
    better = dict(values)
    if name in better:
        better[name] = better[name] + gain
    after = judge(gate, scores(better), stable, stable_revision="stab")
    assert after.passed or not before.passed


@given(declared=VALUES, measured=VALUES, tolerance=st.floats(0, 0.5))
def test_mismatches_are_exactly_the_declared_scores_off_by_more_than_the_tolerance(
    declared, measured, tolerance
):
    verdict = judge(
        EvalGate(tolerance=tolerance),
        scores(measured),
        None,
        stable_revision=None,
        declared=declared,
    )
    off = {
        n
        for n, said in declared.items()
        if n not in measured or abs(measured[n] - said) > tolerance + 1e-12
    }
    assert {m.split(":")[0] for m in verdict.mismatches} == off
    assert verdict.passed, "a mismatch is reported, not judged"
