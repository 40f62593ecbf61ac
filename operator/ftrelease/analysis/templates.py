"""Built-in metric templates: PromQL over the builtin model server's metrics (see
ftrelease.modelserver.metrics). A rate template is a pair of counts over one analysis interval,
bad events and all events, so the sequential judge can compare candidate and stable counts; its
value is their ratio. Variables: {{namespace}} {{release}} {{revision}} {{stableRevision}}
{{interval}} and, for slow-requests, {{latencyBound}} (in seconds, a histogram bucket bound)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SELECTOR = 'release="{{release}}",revision="{{revision}}"'


def _increase(metric: str, extra: str = "") -> str:
    labels = _SELECTOR + (f",{extra}" if extra else "")
    return f"sum(increase({metric}{{{labels}}}[{{{{interval}}}}]))"


@dataclass(frozen=True)
class RateTemplate:
    bad: str
    total: str

    @property
    def value(self) -> str:
        return f"({self.bad}) / ({self.total})"


@dataclass(frozen=True)
class ValueTemplate:
    value: str


_DURATION_COUNT = _increase("finetune_request_duration_seconds_count")
_FAST = _increase("finetune_request_duration_seconds_bucket", 'le="{{latencyBound}}"')
_OK = _increase("finetune_requests_total", 'code="200"')

BUILTIN: dict[str, RateTemplate | ValueTemplate] = {
    "error-rate": RateTemplate(
        bad=_increase("finetune_requests_total", 'code=~"5.."'),
        total=_increase("finetune_requests_total"),
    ),
    "format-invalid-rate": RateTemplate(
        bad=_increase("finetune_format_invalid_total"),
        total=_increase("finetune_format_checked_total"),
    ),
    "refusal-rate": RateTemplate(bad=_increase("finetune_refusals_total"), total=_OK),
    "slow-requests": RateTemplate(bad=f"{_DURATION_COUNT} - {_FAST}", total=_DURATION_COUNT),
    "tokens-per-request": ValueTemplate(
        value=f"({_increase('finetune_generated_tokens_total')}) / ({_OK})"
    ),
}

_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def render(query: str, variables: dict[str, str]) -> str:
    """Fills in {{name}}; an unknown variable is an error naming it and the known ones."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise KeyError(
                f"unknown variable {{{{{name}}}}}; known: {', '.join(sorted(variables))}"
            )
        return variables[name]

    return _VARIABLE.sub(value, query)
