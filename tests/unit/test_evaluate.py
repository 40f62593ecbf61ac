"""One analysis interval: every outcome is distinct and a failure names its figures."""

from __future__ import annotations

from ftrelease.analysis.evaluate import Measurement, evaluate
from ftrelease.analysis.judges import Counts
from ftrelease.analysis.measure import measure
from ftrelease.api.strategy import Analysis, Metric

ANALYSIS = Analysis.model_validate(
    {
        "alpha": 0.01,
        "minSamples": 100,
        "metrics": [
            {"name": "errors", "template": "error-rate"},
            {"name": "escalations", "query": "sum(x)", "judge": "threshold", "max": 0.02},
        ],
    }
)
OK_ESCALATIONS = Measurement(candidate_value=0.01)


def errors_counted(candidate: Counts, stable: Counts) -> dict[str, Measurement]:
    """One interval: these error counts, and escalations within their threshold."""
    return {
        "errors": Measurement(candidate=candidate, stable=stable),
        "escalations": OK_ESCALATIONS,
    }


def test_too_few_samples_is_nodata_never_pass_or_fail():
    results, verdict = evaluate(ANALYSIS, errors_counted(Counts(0, 40), Counts(1, 4000)), [])
    assert [r.outcome for r in results] == ["NoData", "Pass"]
    assert not verdict.passed and not verdict.failed
    assert "40 of 100" in verdict.reason


def test_evidence_accumulates_across_intervals_until_pass():
    previous = []
    for _ in range(3):
        previous, verdict = evaluate(
            ANALYSIS, errors_counted(Counts(0, 40), Counts(2, 4000)), previous
        )
    assert previous[0].samples == 120
    assert previous[0].outcome == "Pass" and verdict.passed


def test_a_worse_candidate_fails_with_both_rates_and_the_bound():
    previous, verdict = [], None
    for _ in range(10):
        previous, verdict = evaluate(
            ANALYSIS, errors_counted(Counts(8, 100), Counts(40, 9900)), previous
        )
        if verdict.failed:
            break
    assert verdict.failed
    assert "errors: candidate" in verdict.reason and "vs stable" in verdict.reason
    assert ">= 200" in verdict.reason  # 1 / (alpha / 2 metrics)


def test_an_error_holds_and_keeps_the_evidence():
    previous, _ = evaluate(ANALYSIS, errors_counted(Counts(1, 200), Counts(5, 5000)), [])
    results, verdict = evaluate(
        ANALYSIS,
        {
            "errors": Measurement(error="prometheus at http://x is unreachable"),
            "escalations": OK_ESCALATIONS,
        },
        previous,
    )
    assert results[0].outcome == "Error"
    assert results[0].samples == 200 and results[0].log_evidence == previous[0].log_evidence
    assert not verdict.passed and not verdict.failed
    assert "unreachable" in verdict.reason


def test_threshold_breach_fails_naming_the_bound():
    _, verdict = evaluate(
        ANALYSIS,
        {
            "errors": Measurement(candidate=Counts(0, 500), stable=Counts(5, 5000)),
            "escalations": Measurement(candidate_value=0.05),
        },
        [],
    )
    assert verdict.failed and "escalations: 0.05 breaks max 0.02" in verdict.reason


def test_relative_at_a_full_stage_compares_with_stable_last_value():
    analysis = Analysis.model_validate(
        {
            "metrics": [
                {
                    "name": "cost",
                    "template": "tokens-per-request",
                    "judge": "relative",
                    "margin": 0.2,
                }
            ]
        }
    )
    at_ten, _ = evaluate(analysis, {"cost": Measurement(candidate_value=110, stable_value=100)}, [])
    assert at_ten[0].outcome == "Pass"
    # Stable serves nothing at 100%: its last value still bounds the candidate.
    ok, verdict = evaluate(analysis, {"cost": Measurement(candidate_value=115)}, at_ten)
    assert ok[0].outcome == "Pass" and ok[0].stable_value == 100 and verdict.passed
    _, verdict = evaluate(analysis, {"cost": Measurement(candidate_value=130)}, at_ten)
    assert verdict.failed and "exceeds (1 + 0.2) x stable" in verdict.reason


class Answers:
    """Prometheus answering fixed figures per counter. A scrape torn between two counters (bad
    counted, total not yet) cannot be produced on demand, so this stands in for it."""

    def __init__(self, figures: dict[str, float]):
        self.figures = figures

    def query(self, promql: str, at=None) -> float | None:
        return next((v for name, v in self.figures.items() if name in promql), None)


def test_a_window_whose_bad_count_exceeds_its_total_is_read_as_every_request_bad():
    metric = Metric.model_validate({"name": "format", "template": "format-invalid-rate"})
    source = Answers({"format_invalid": 30.4, "format_checked": 30.0})
    variables = {"namespace": "ns", "release": "r", "revision": "c", "stableRevision": "s"}
    measured = measure(metric, source, {**variables, "interval": "30s"})
    assert measured.candidate == Counts(30.0, 30.0)
    results, _ = evaluate(
        Analysis.model_validate({"minSamples": 10, "metrics": [metric.model_dump(by_alias=True)]}),
        {"format": measured},
        [],
    )
    assert results[0].value == 1.0
