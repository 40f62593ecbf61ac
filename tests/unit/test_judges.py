"""The sequential judge's guarantees, by simulation with seeded random counts."""

from __future__ import annotations

import numpy as np
from ftrelease.analysis.judges import (
    Counts,
    Evidence,
    fails,
    relative_holds,
    sequential_update,
    threshold_holds,
)


def run(rng, candidate_rate, stable_rate, alpha, intervals=120, n_candidate=15, n_stable=1485):
    """One rollout at 1% of 100 rps with 15s intervals; True if the judge ever fails it."""
    evidence = Evidence()
    for _ in range(intervals):
        nc = rng.poisson(n_candidate)
        nb = rng.poisson(n_stable)
        x = rng.binomial(nc, candidate_rate)
        y = rng.binomial(nb, stable_rate)
        evidence = sequential_update(evidence, Counts(x, nc), Counts(y, nb), margin=0.0)
        if fails(evidence, alpha):
            return True
    return False


def test_false_rollbacks_stay_within_alpha_however_often_checked():
    rng = np.random.default_rng(7)
    runs = 600
    false = sum(run(rng, 0.005, 0.005, alpha=0.05) for _ in range(runs))
    # Ville: P(ever >= 1/alpha) <= alpha = 5%; allow the sampling error of 600 runs.
    assert false / runs <= 0.05 + 2 * (0.05 * 0.95 / runs) ** 0.5


def test_a_real_regression_is_caught():
    rng = np.random.default_rng(11)
    caught = sum(run(rng, 0.05, 0.005, alpha=0.01) for _ in range(100))
    assert caught >= 95


def test_a_2x_regression_at_1_percent_is_caught_within_two_hours():
    # 1% of 100 rps, 0.5% baseline: the plug-in alone caught 2x in about half of such runs in
    # two hours; the mixture's fixed alternatives catch nearly all (bench/analysis).
    rng = np.random.default_rng(5)
    caught = sum(run(rng, 0.01, 0.005, alpha=0.01, intervals=480) for _ in range(60))
    assert caught >= 51


def test_no_bad_events_is_no_evidence():
    evidence = sequential_update(Evidence(), Counts(0, 100), Counts(0, 10000), margin=0.1)
    assert evidence.log_e == 0 and evidence.candidate_total == 100


def test_threshold_and_relative():
    assert threshold_holds(0.01, None, 0.02) and not threshold_holds(0.03, None, 0.02)
    assert threshold_holds(5, 1, None) and not threshold_holds(0.5, 1, None)
    assert relative_holds(1.05, 1.0, 0.1) and not relative_holds(1.2, 1.0, 0.1)
