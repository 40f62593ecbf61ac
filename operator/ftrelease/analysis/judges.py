"""Judges: from measured values or counts to an outcome. Pure functions; no Prometheus here.

The sequential judge is the anytime-valid count test of DESIGN.md §4. Per analysis interval i
the candidate has x_i bad events of n_c,i requests and stable y_i of n_b,i. Under H0 (candidate
rate <= (1 + m) x stable rate), given x_i + y_i, x_i is at most Binomial(x_i + y_i, p0_i) with
p0_i = (1+m) n_c,i / ((1+m) n_c,i + n_b,i). For any q_i >= p0_i fixed before interval i is seen,

    E_t = prod_i (q_i / p0_i)^x_i ((1 - q_i) / (1 - p0_i))^y_i

is a nonnegative supermartingale under H0, so by Ville's inequality P(E_t ever >= 1/alpha) <=
alpha however often it is checked. Fail when E_t >= k/alpha for k metrics (Bonferroni).

Which q? DESIGN's predictable plug-in, q_i = max(p0_i, (X + a) / (X + Y + a + b)) with X, Y the
counts so far, learns the ratio slowly at low bad rates: at 1% of traffic and a 0.5% baseline it
served 3.7x the bad requests of Wald's SPRT (which knows both rates) before catching a 2x
regression. So the e-value is the average of that plug-in process and one per fixed alternative
"the candidate is rho times the allowed rate" (q_i = rho w / (rho w + n_b,i), w = (1+m) n_c,i),
rho in ALTERNATIVES. An average of e-processes is an e-process (same guarantee); the component
nearest the truth dominates, at a cost of log(#components) in evidence. bench/analysis measures
it at 1.2x the SPRT's bad requests. Evidence is kept per candidate, across its stages."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

PRIOR_BAD, PRIOR_GOOD = 1.0, 1.0  # (a, b): a weak prior for the plug-in estimate q
ALTERNATIVES = (1.5, 2.0, 3.0, 5.0, 10.0)  # rho: candidate rate / allowed rate
COMPONENTS = 1 + len(ALTERNATIVES)


@dataclass(frozen=True)
class Counts:
    """Bad events of all events in one window: 0 <= bad <= total (analysis.measure.measure
    makes Prometheus' extrapolated counts so)."""

    bad: float
    total: float


@dataclass(frozen=True)
class Evidence:
    """The sequential judge's state for one metric of one candidate (kept in status)."""

    log_e: float = 0.0  # of the average over the components
    components: tuple[float, ...] = (0.0,) * COMPONENTS  # log e of each: plug-in, alternatives
    candidate_bad: float = 0.0
    stable_bad: float = 0.0
    candidate_total: float = 0.0
    stable_total: float = 0.0


def sequential_update(
    evidence: Evidence, candidate: Counts, stable: Counts, margin: float
) -> Evidence:
    """Folds one interval's counts into the evidence."""
    x, y = candidate.bad, stable.bad
    n_c, n_b = candidate.total, stable.total
    components = evidence.components
    if x + y > 0 and n_c > 0:
        weighted = (1 + margin) * n_c
        p0 = weighted / (weighted + n_b)
        if p0 < 1.0:
            plug_in = (evidence.candidate_bad + PRIOR_BAD) / (
                evidence.candidate_bad + evidence.stable_bad + PRIOR_BAD + PRIOR_GOOD
            )
            qs = [max(p0, plug_in)] + [
                rho * weighted / (rho * weighted + n_b) for rho in ALTERNATIVES
            ]
            components = tuple(
                log_e + _log_ratio(x, y, q, p0) for log_e, q in zip(components, qs, strict=True)
            )
    log_e = _log_mean_exp(components)
    return replace(
        evidence,
        log_e=log_e,
        components=components,
        candidate_bad=evidence.candidate_bad + x,
        stable_bad=evidence.stable_bad + y,
        candidate_total=evidence.candidate_total + n_c,
        stable_total=evidence.stable_total + n_b,
    )


def _log_ratio(x: float, y: float, q: float, p0: float) -> float:
    """log of (q/p0)^x ((1-q)/(1-p0))^y; q < 1 whenever p0 < 1 (stable had requests)."""
    return x * math.log(q / p0) + y * math.log((1 - q) / (1 - p0))


def _log_mean_exp(values: tuple[float, ...]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


def fails(evidence: Evidence, alpha_per_metric: float) -> bool:
    return evidence.log_e >= math.log(1 / alpha_per_metric)


def threshold_holds(value: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def relative_holds(candidate: float, stable: float, margin: float) -> bool:
    """The candidate's value is at most (1 + margin) x stable's, on the same window."""
    return candidate <= (1 + margin) * stable
