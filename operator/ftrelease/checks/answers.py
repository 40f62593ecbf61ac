"""One request's answers, measured: the one implementation of what the builtin server and the
response checker record of each request, so the analysis reads the same thing from both."""

from __future__ import annotations

from dataclasses import dataclass

from ftrelease.api.bundle import Prompt

from .metrics import ServerMetrics
from .output import RefusalDetector, escalated, format_valid

# What a request can be flagged with: what analysis rolls back on, and what people review.
FLAGS = ("format_invalid", "refusal", "escalation")


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str | None  # stop (complete), length (cut off), tool_calls; None: unknown
    tool_calls: tuple[str, ...] = ()  # the names of the tools it calls


@dataclass
class AnswerChecks:
    prompt: Prompt  # the bundle's: its output format and escalation rule
    refusals: RefusalDetector
    metrics: ServerMetrics

    def record(self, labels: dict[str, str], answers: list[Answer], chat: bool) -> list[str]:
        """Finish reasons per answer; the output format of each whole chat answer (an answer
        cut off by max_tokens cannot be valid, and a raw completion is not an answer to a
        conversation); a refusal or an escalation once per request, if any answer is one.
        Returns what the request was flagged with (FLAGS), for review samples."""
        m, output_format = self.metrics, self.prompt.output_format
        refused = handed_over = invalid = False
        for answer in answers:
            m.finish_reasons.labels(**labels, reason=answer.finish_reason or "unknown").inc()
            if chat and answer.finish_reason == "stop" and output_format.type != "text":
                m.format_checked.labels(**labels).inc()
                if not format_valid(output_format, answer.text):
                    m.format_invalid.labels(**labels).inc()
                    invalid = True
            refused = refused or self.refusals.refused(answer.text)
            handed_over = handed_over or escalated(
                self.prompt.escalation, answer.text, answer.tool_calls
            )
        if refused:
            m.refusals.labels(**labels).inc()
        if handed_over:
            m.escalations.labels(**labels).inc()
        return [flag for flag, on in zip(FLAGS, (invalid, refused, handed_over), strict=True) if on]
