"""Offline validation: every problem of a FineTuneRelease as (field path, message), with paths
written the way the apiserver writes them (`spec.strategy.stages[1].weight`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .resource import API_VERSION, GROUP, KIND, FineTuneRelease


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def problems_from(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        if item["type"] == "at_path":
            # A rule about a field below the model that checks it (like a CEL rule's fieldPath).
            ctx = item["ctx"]
            base = field_path(loc)
            path = f"{base}.{ctx['path']}" if base else ctx["path"]
            problems.append(Problem(path, ctx["message"]))
        else:
            problems.append(Problem(field_path(loc), _message(item)))
    return sorted(set(problems))


def is_release(document: Any) -> bool:
    """True for documents meant as FineTuneReleases (any finetune.dev version)."""
    return (
        isinstance(document, dict)
        and document.get("kind") == KIND
        and str(document.get("apiVersion", "")).startswith(f"{GROUP}/")
    )


def validate_release(document: Any) -> tuple[FineTuneRelease | None, list[Problem]]:
    """The parsed release and no problems, or None and every problem found."""
    if not isinstance(document, dict):
        return None, [Problem("", f"expected a mapping, got {type(document).__name__}")]
    if document.get("apiVersion") != API_VERSION and is_release(document):
        return None, [Problem("apiVersion", f"must be {API_VERSION}")]
    try:
        return FineTuneRelease.model_validate(document), []
    except ValidationError as exc:
        return None, problems_from(exc)
