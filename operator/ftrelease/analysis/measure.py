"""Measuring one metric over one window through a MetricSource (Prometheus) with the built-in
templates. The only I/O of analysis; the cycle (rollout.cycle) says which window."""

from __future__ import annotations

from datetime import datetime

from ftrelease.api.durations import parse_duration
from ftrelease.api.strategy import Metric

from .evaluate import Measure, Measurement
from .judges import Counts
from .source import MetricError, MetricSource
from .templates import TEMPLATES, RateTemplate, render


def from_source(source: MetricSource, at: datetime | None = None) -> Measure:
    """Measures through a MetricSource (Prometheus) with the built-in templates, evaluated at
    `at` (a window's end: a measurement that runs late still counts only its window)."""
    return lambda metric, variables: measure(metric, _At(source, at), variables)


class _At:
    """A MetricSource whose queries are evaluated at one instant."""

    def __init__(self, source: MetricSource, at: datetime | None) -> None:
        self.source, self.at = source, at

    def query(self, promql: str, at: datetime | None = None) -> float | None:
        return self.source.query(promql, at or self.at)


def measure(metric: Metric, source: MetricSource, variables: dict[str, str]) -> Measurement:
    """One metric over the window: candidate and stable counts for rate templates, the
    candidate's value (and stable's, for the relative judge) otherwise."""
    if metric.latency_bound is not None:  # as the histogram's `le` label writes it: "2.0"
        seconds = parse_duration(metric.latency_bound).total_seconds()
        variables = {**variables, "latencyBound": f"{seconds:.1f}"}
    stable = {**variables, "revision": variables["stableRevision"]}
    try:
        if metric.template is not None:
            template = TEMPLATES[metric.template]
            if isinstance(template, RateTemplate):
                return Measurement(
                    candidate=_counts(source, template, variables),
                    stable=_counts(source, template, stable),
                )
            query = template.value
        else:
            assert metric.query is not None
            query = metric.query
        candidate_value = source.query(render(query, variables))
        stable_value = (
            source.query(render(query, stable)) if metric.effective_judge == "relative" else None
        )
        return Measurement(candidate_value=candidate_value, stable_value=stable_value)
    except MetricError as exc:
        return Measurement(error=str(exc))
    except KeyError as exc:  # an unknown {{variable}} in a custom query
        return Measurement(error=f"query of {metric.name}: {exc.args[0]}")


def _counts(source: MetricSource, template: RateTemplate, variables: dict[str, str]) -> Counts:
    # No series (nothing scraped for this revision yet) is zero requests: NoData, not Error.
    total = source.query(render(template.total, variables)) or 0.0
    if template.good is None:
        assert template.bad is not None
        bad = source.query(render(template.bad, variables)) or 0.0
    else:
        good = source.query(render(template.good, variables))
        if good is None and total > 0:
            raise MetricError(
                f'no histogram bucket le="{variables.get("latencyBound")}" for revision '
                f"{variables['revision']}: latencyBound must be one of the histogram's bounds"
            )
        bad = total - (good or 0.0)
    # Bad and total come from two counters: a scrape can catch a request counted in one and not
    # yet the other, and increase() extrapolates each, so a window's bad may exceed its total by
    # a fraction of a request. No rate is above 100% or below 0%.
    total = max(total, 0.0)
    return Counts(min(max(bad, 0.0), total), total)
