"""Constrained field types shared by the spec models. Each carries its rule twice, from one
definition: as a Python validator with a message saying what is allowed, and as the CRD schema
(pattern or CEL rule with the same message), so offline validation and the apiserver agree."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from .durations import DURATION_HELP, DURATION_PATTERN


def cel(
    rule: str,
    message: str,
    *,
    field_path: str | None = None,
    message_expression: str | None = None,
) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry; `message_expression` (CEL, a string) names what
    failed where the static message cannot."""
    entry = {"rule": rule, "message": message}
    if message_expression:
        entry["messageExpression"] = message_expression
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def error_at(path: str, message: str) -> PydanticCustomError:
    """A validation error about `path`, relative to the model that raises it (the same place a
    CEL rule's fieldPath points at), so offline and server-side errors name the same field."""
    return PydanticCustomError("at_path", "{path}: {message}", {"path": path, "message": message})


def _pattern_checker(pattern: str, message: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r}: {message}")
        return value

    return check


def matching(pattern: str, message: str, *, max_length: int) -> Any:
    """A string that must match `pattern` (anchored, RE2-compatible), refused with `message`.
    In the CRD it becomes a CEL `matches` rule rather than a bare `pattern`, so the apiserver's
    message says what is allowed instead of echoing the regular expression."""
    return Annotated[
        str,
        Field(max_length=max_length),
        AfterValidator(_pattern_checker(pattern, message)),
        WithJsonSchema(
            {
                "type": "string",
                "maxLength": max_length,
                "x-kubernetes-validations": [cel(f"self.matches({pattern!r})", message)],
            }
        ),
    ]


NonEmptyStr = Annotated[str, Field(min_length=1, max_length=253)]

# A Kubernetes object name fragment: stage and metric names end up in labels and Events.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DnsLabel = matching(
    DNS_LABEL_PATTERN,
    "must be a DNS label: lowercase letters, digits and '-', starting and ending alphanumeric, at most 63 characters",
    max_length=63,
)

DnsSubdomain = matching(
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    "must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending alphanumeric",
    max_length=253,
)

ConfigMapKeyName = matching(
    r"^[-._a-zA-Z0-9]+$",
    "must be a ConfigMap key: letters, digits, '-', '_' and '.'",
    max_length=253,
)

PinnedRevision = matching(
    r"^([0-9a-f]{40}|sha256:[0-9a-f]{64})$",
    "must pin an exact revision: a 40-hex commit or sha256:<64 hex>, never a branch or tag such as main or latest",
    max_length=71,
)

Sha256Digest = matching(
    r"^sha256:[0-9a-f]{64}$",
    "must be a digest of the form sha256:<64 lowercase hex>",
    max_length=71,
)

ModelUri = matching(
    r"^(pvc|file|s3|gs|oci|hf)://[^\s]+$",
    "must be a URI with scheme pvc://, file://, s3://, gs://, oci:// or hf://",
    max_length=2048,
)

# A dataset version names one immutable snapshot; these names move under your feet.
FLOATING_VERSIONS = ("latest", "main", "master", "head", "current", "stable")


def _not_floating(version: str) -> str:
    if version.strip().lower() in FLOATING_VERSIONS:
        raise ValueError(
            f"{version!r} floats: a dataset version must name one immutable snapshot "
            f"(a date, a number or a digest), not one of {', '.join(FLOATING_VERSIONS)}"
        )
    return version


_FLOATING_CEL = "[" + ", ".join(repr(v) for v in FLOATING_VERSIONS) + "]"
DatasetVersion = Annotated[
    str,
    Field(min_length=1, max_length=253),
    AfterValidator(_not_floating),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 253,
            "x-kubernetes-validations": [
                cel(
                    f"!(self.trim().lowerAscii() in {_FLOATING_CEL})",
                    "floats: a dataset version must name one immutable snapshot (a date, a number "
                    f"or a digest), not one of {', '.join(FLOATING_VERSIONS)}",
                )
            ],
        }
    ),
]

# Filtering code is pinned like the base model: a git URL at a commit, or a content digest.
PinnedFilter = matching(
    r"^(git\+[^\s@]+@[0-9a-f]{40}|sha256:[0-9a-f]{64})$",
    "must pin the filtering code: git+<url>@<40-hex commit> or sha256:<64 hex>",
    max_length=2048,
)

ModelName = matching(
    r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
    "must be the model name clients send: letters, digits and . _ : / -, starting alphanumeric",
    max_length=256,
)

Duration = Annotated[
    str,
    AfterValidator(_pattern_checker(DURATION_PATTERN, f"must be {DURATION_HELP}")),
    Field(min_length=2, max_length=32),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 2,
            "maxLength": 32,
            "x-kubernetes-validations": [
                cel(f"self.matches({DURATION_PATTERN!r})", f"must be {DURATION_HELP}")
            ],
        }
    ),
]


def _number(value: Any) -> float:
    # YAML `0.9` and `"0.9"` must not both pass: a score is a number, never a string or a bool.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


Score = Annotated[float, BeforeValidator(_number), WithJsonSchema({"type": "number"})]
"""A number; normalised to float so that `1` and `1.0` give the same revision."""

QUANTITY_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$"
QUANTITY_HELP = "must be a Kubernetes quantity such as 1, 500m or 16Gi"


def _quantity(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r}: {QUANTITY_HELP}")
    if isinstance(value, str) and not re.fullmatch(QUANTITY_PATTERN, value):
        raise ValueError(f"{value!r}: {QUANTITY_HELP}")
    return value


Quantity = Annotated[
    int | str,
    BeforeValidator(_quantity),
    # A pattern, not CEL: a CEL rule over int-or-string costs too much per map entry.
    WithJsonSchema({"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN}),
]
