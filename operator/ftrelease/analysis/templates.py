"""Built-in metric templates. A rate template is a pair of counts over one analysis window, bad
events and all events, so the sequential judge can compare candidate and stable counts; its
value is their ratio. A value template is one number (tokens per request).

Variables: {{namespace}} {{release}} {{revision}} {{stableRevision}} {{interval}} (the window,
e.g. `30s`) and, for slow-requests, {{latencyBound}} (seconds as the histogram's `le` label
writes them, e.g. `2.0`).

Every runtime's answers are measured by the same code (ftrelease.checks), under the same names
and labels (release, revision, model, adapter): the builtin server measures its own, and beside
any other runtime (vLLM) the response checker (ftrelease.sidecar) measures what passes through
it. So one set of templates serves every runtime."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SELECTOR = 'release="{{release}}",revision="{{revision}}"'


def _increase(metric: str, extra: str = "") -> str:
    labels = _SELECTOR + (f",{extra}" if extra else "")
    return f"sum(increase({metric}{{{labels}}}[{{{{interval}}}}]))"


@dataclass(frozen=True)
class RateTemplate:
    """Bad events of all events; or, with `good` (a histogram bucket), all but the good ones,
    so that a bucket that does not exist is an error rather than zero slow requests."""

    total: str
    bad: str | None = None
    good: str | None = None

    @property
    def value(self) -> str:
        if self.good is not None:
            return f"1 - ({self.good}) / ({self.total})"
        return f"({self.bad}) / ({self.total})"


@dataclass(frozen=True)
class ValueTemplate:
    value: str


Template = RateTemplate | ValueTemplate


def _slow(histogram: str) -> RateTemplate:
    return RateTemplate(
        total=_increase(f"{histogram}_count"),
        good=_increase(f"{histogram}_bucket", 'le="{{latencyBound}}"'),
    )


_OK = _increase("finetune_requests_total", 'code="200"')
TEMPLATES: dict[str, Template] = {
    "error-rate": RateTemplate(
        bad=_increase("finetune_requests_total", 'code=~"5.."'),
        total=_increase("finetune_requests_total"),
    ),
    "format-invalid-rate": RateTemplate(
        bad=_increase("finetune_format_invalid_total"),
        total=_increase("finetune_format_checked_total"),
    ),
    "refusal-rate": RateTemplate(bad=_increase("finetune_refusals_total"), total=_OK),
    "escalation-rate": RateTemplate(bad=_increase("finetune_escalations_total"), total=_OK),
    "slow-requests": _slow("finetune_request_duration_seconds"),
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
