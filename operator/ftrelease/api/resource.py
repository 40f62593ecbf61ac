"""The FineTuneRelease resource: group, version and kind, metadata rules, and the whole object."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from .fields import DNS_LABEL_PATTERN
from .spec import FineTuneReleaseSpec
from .status import FineTuneReleaseStatus

GROUP = "finetune.dev"
VERSION = "v1alpha1"
KIND = "FineTuneRelease"
PLURAL = "finetunereleases"
API_VERSION = f"{GROUP}/{VERSION}"

MAX_NAME_LENGTH = 52
NAME_HELP = (
    f"must be a DNS label of at most {MAX_NAME_LENGTH} characters: owned objects are named "
    "<name>-<10-char revision>"
)


class ObjectMeta(BaseModel):
    """Only what validation needs; the apiserver owns the rest."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None

    @field_validator("name")
    @classmethod
    def _dns_subdomain(cls, name: str) -> str:
        # Owned objects are named <release>-<revision>, which must stay a DNS label.
        if not re.fullmatch(DNS_LABEL_PATTERN, name) or len(name) > MAX_NAME_LENGTH:
            raise ValueError(NAME_HELP)
        return name


class FineTuneRelease(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    api_version: Literal["finetune.dev/v1alpha1"]
    kind: Literal["FineTuneRelease"]
    metadata: ObjectMeta
    spec: FineTuneReleaseSpec
    status: FineTuneReleaseStatus | None = None
