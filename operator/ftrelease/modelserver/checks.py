"""What the server checks in each response: output format validity (the bundle's
prompt.outputFormat) and refusals (configurable patterns)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema

DEFAULT_REFUSALS = (
    r"\bI can(?:no|')t help with\b",
    r"\bI(?:'m| am) (?:sorry|unable)\b",
    r"\bas an AI\b",
)


@dataclass(frozen=True)
class OutputFormat:
    type: str = "text"  # text | json | json-schema | regex
    schema: dict[str, Any] | None = None
    pattern: str | None = None

    @property
    def declared(self) -> bool:
        return self.type != "text"

    def valid(self, text: str) -> bool:
        if self.type == "text":
            return True
        if self.type == "regex":
            return re.fullmatch(self.pattern or "", text.strip()) is not None
        try:
            value = json.loads(text)
        except ValueError:
            return False
        if self.type == "json-schema":
            try:
                jsonschema.validate(value, self.schema or {})
            except jsonschema.ValidationError:
                return False
        return True

    @staticmethod
    def from_bundle(bundle: dict[str, Any]) -> OutputFormat:
        fmt = ((bundle.get("prompt") or {}).get("outputFormat")) or {}
        return OutputFormat(fmt.get("type", "text"), fmt.get("schema"), fmt.get("pattern"))


@dataclass
class RefusalDetector:
    patterns: list[str] = field(default_factory=lambda: list(DEFAULT_REFUSALS))

    def __post_init__(self) -> None:
        self._compiled = [re.compile(p, re.IGNORECASE) for p in self.patterns]

    def refused(self, text: str) -> bool:
        return any(p.search(text) for p in self._compiled)
