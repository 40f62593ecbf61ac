"""What is checked in each answer: output format validity (the bundle's prompt.outputFormat),
refusals (configurable patterns) and escalations (the bundle's prompt.escalation)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import jsonschema

from ftrelease.api.bundle import Escalation, OutputFormat

DEFAULT_REFUSALS = (
    r"\bI can(?:no|')t help with\b",
    r"\bI(?:'m| am) (?:sorry|unable)\b",
    r"\bas an AI\b",
)


def format_valid(fmt: OutputFormat, text: str) -> bool:
    """Whether a response satisfies the bundle's prompt.outputFormat (api.bundle.OutputFormat)."""
    if fmt.type == "text":
        return True
    if fmt.type == "regex":
        return re.fullmatch(fmt.pattern or "", text.strip()) is not None
    try:
        value = json.loads(text)
    except ValueError:
        return False
    if fmt.type == "json-schema":
        try:
            jsonschema.validate(value, fmt.json_schema or {})
        except jsonschema.ValidationError:
            return False
    return True


@dataclass
class RefusalDetector:
    patterns: list[str] = field(default_factory=lambda: list(DEFAULT_REFUSALS))

    def __post_init__(self) -> None:
        self._compiled = [re.compile(p, re.IGNORECASE) for p in self.patterns]

    def refused(self, text: str) -> bool:
        return any(p.search(text) for p in self._compiled)


def escalated(rule: Escalation | None, text: str, tool_calls: tuple[str, ...] = ()) -> bool:
    """Whether an answer hands the conversation to a human by the bundle's rule."""
    if rule is None:
        return False
    if rule.tool_call is not None:
        return rule.tool_call in tool_calls
    if rule.pattern is not None:
        return re.search(rule.pattern, text) is not None
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get(rule.json_field) is True
