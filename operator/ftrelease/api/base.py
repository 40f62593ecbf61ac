"""The base of the FineTuneRelease API (group finetune.dev, v1alpha1): pydantic models are the
single source of truth. The CRD in crds/ is generated from them (`python -m ftrelease.api.crd`),
and every cross-field rule exists twice from one place: a Python validator and the CEL rule with
the same message in `model_config["json_schema_extra"]`, so `kubectl apply` and `kubectl finetune
validate` refuse the same specs with the same words."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

MAX_SCORES = 32


def cel_rules(*entries: dict[str, Any]) -> dict[str, Any]:
    """A model's or field's `json_schema_extra` carrying CEL rules (see fields.cel)."""
    return {"x-kubernetes-validations": list(entries)}


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors (the apiserver's
    strict field validation refuses them too)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", allow_inf_nan=False
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it appears in YAML: camelCase keys, defaults explicit, unset omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
