"""An eval suite's cases and how answers are scored. Pure: the runner (run.py) does the I/O.

Cases are JSON lines: {"messages": [...]} (chat) or {"prompt": "..."} (completion), with the
"expected" answer (optional: a case without one counts for format, refusals and tokens only)."""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass
from typing import Any

from ftrelease.api.bundle import Prompt
from ftrelease.checks.output import RefusalDetector, format_valid

RESULT_LIMIT = 4096  # bytes: what Kubernetes keeps of a termination message


class CasesProblem(ValueError):
    """The cases file cannot be used; the message names the line."""


@dataclass(frozen=True)
class Case:
    line: int
    messages: list[dict[str, Any]] | None
    prompt: str | None
    expected: str | None


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int


def read_cases(data: bytes) -> tuple[list[Case], str]:
    """The cases of a JSON-lines file, and the file's digest (sha256:<hex>)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    cases = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except ValueError as exc:
            raise CasesProblem(f"line {number}: not JSON: {exc}") from None
        if not isinstance(case, dict):
            raise CasesProblem(f"line {number}: a case is a JSON object")
        messages, prompt, expected = case.get("messages"), case.get("prompt"), case.get("expected")
        if (messages is None) == (prompt is None):
            raise CasesProblem(f"line {number}: a case has exactly one of messages or prompt")
        if messages is not None and not (
            isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages)
        ):
            raise CasesProblem(f"line {number}: messages must be a non-empty list of objects")
        if prompt is not None and not isinstance(prompt, str):
            raise CasesProblem(f"line {number}: prompt must be a string")
        if expected is not None and not isinstance(expected, str):
            raise CasesProblem(f"line {number}: expected must be a string")
        cases.append(Case(number, messages, prompt, expected))
    if not cases:
        raise CasesProblem("the suite has no cases")
    return cases, digest


_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def normalized(text: str) -> str:
    """Case, punctuation and runs of whitespace do not count."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def score(
    cases: list[Case], answers: list[Answer], prompt: Prompt, refusals: RefusalDetector
) -> dict[str, float]:
    """The built-in evaluator's scores (api.bundle.BUILTIN_SCORES) over one run."""
    assert len(cases) == len(answers)
    expected = [(c.expected, a.text) for c, a in zip(cases, answers, strict=True) if c.expected]
    fmt = prompt.output_format
    scores = {
        "format_valid": _share(format_valid(fmt, a.text) for a in answers),
        "refusal_rate": _share(refusals.refused(a.text) for a in answers),
        "mean_tokens": sum(a.tokens for a in answers) / len(answers),
    }
    if expected:
        scores["exact_match"] = _share(want.strip() == got.strip() for want, got in expected)
        scores["normalized_match"] = _share(
            normalized(want) == normalized(got) for want, got in expected
        )
    return {name: round(value, 6) for name, value in scores.items()}


def _share(flags) -> float:
    flags = list(flags)
    return sum(flags) / len(flags)


def result_document(
    suite: str, version: str, scores: dict[str, float], cases: int, digest: str
) -> str:
    """What the evaluator leaves as its pod's termination message (docs/evals.md)."""
    document = {
        "suite": suite,
        "version": version,
        "scores": scores,
        "cases": cases,
        "casesDigest": digest,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > RESULT_LIMIT:
        raise ValueError(f"the result is over {RESULT_LIMIT} bytes")
    return text
