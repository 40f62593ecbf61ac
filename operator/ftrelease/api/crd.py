"""Generates crds/finetunerelease.yaml from the pydantic models.

`python -m ftrelease.api.crd` prints it; `python -m ftrelease.api.crd --write` updates the file
(a test fails when the file is stale). Pydantic's JSON Schema is turned into a structural
OpenAPI v3 schema: references inlined, `Optional` unwrapped, 2020-12 keywords rewritten in their
OpenAPI 3.0 form, and the CEL rules the models carry kept as `x-kubernetes-validations`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from .fields import DNS_LABEL_PATTERN, cel
from .resource import GROUP, KIND, MAX_NAME_LENGTH, NAME_HELP, PLURAL, VERSION
from .spec import FineTuneReleaseSpec
from .status import FineTuneReleaseStatus

CRD_FILE = Path(__file__).resolve().parents[3] / "crds" / "finetunerelease.yaml"
CRD_NAME = f"{PLURAL}.{GROUP}"

NAME_RULE = cel(
    f"self.metadata.name.size() <= {MAX_NAME_LENGTH} && self.metadata.name.matches({DNS_LABEL_PATTERN!r})",
    NAME_HELP,
    field_path=".metadata.name",
)

# Keywords pydantic emits that a structural schema must not carry (or that mean nothing here).
_DROPPED = {"title", "$defs"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node.pop("allOf")[0], **node}
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        node = {**target, **node}  # the referring field's description/default win
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if node.get("x-kubernetes-int-or-string"):
            pass  # int-or-string carries its own rule; structural schemas forbid typed anyOf here
        elif len(options) == 1:
            node = {**options[0], **node}
        else:
            raise ValueError(f"cannot express a union in a structural schema: {options}")
        if "$ref" in node:
            return _structural(node, defs)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "exclusiveMinimum" in node:  # 2020-12 number -> OpenAPI 3.0 boolean
        node["minimum"] = node.pop("exclusiveMinimum")
        node["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node:
        node["maximum"] = node.pop("exclusiveMaximum")
        node["exclusiveMaximum"] = True
    if node.get("additionalProperties") in (True, False):
        node.pop("additionalProperties")
    if node.get("default") is None:
        node.pop("default", None)
    else:
        node["default"] = _without_nulls(node["default"])
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _structural(value, defs)
        else:
            out[key] = value
    return out


class _WithFactoryDefaults(GenerateJsonSchema):
    """Writes `default_factory` values into the schema too, so the apiserver fills in nested
    objects (and the CEL rules that read them always find them)."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            value = factory()
            return value.to_wire() if hasattr(value, "to_wire") else value
        return super().get_default_value(schema)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def openapi_schema(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults
    )
    return _structural(raw, raw.get("$defs", {}))


def status_schema() -> dict[str, Any]:
    schema = openapi_schema(FineTuneReleaseStatus)
    # kopf keeps its own bookkeeping under status.kopf; declared so it is not pruned.
    schema["properties"]["kopf"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return schema


def build_crd() -> dict[str, Any]:
    spec_schema = openapi_schema(FineTuneReleaseSpec)
    spec_schema["description"] = (
        "A versioned bundle and how to roll it out. Any change of spec.bundle is a new revision."
    )
    root = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": spec_schema,
            "status": status_schema(),
        },
        "x-kubernetes-validations": [NAME_RULE],
    }
    columns = [
        ("Phase", "string", ".status.phase"),
        ("Stage", "string", ".status.stage.name"),
        ("Weight", "integer", ".status.stage.weight"),
        ("Stable", "string", ".status.stableRevision"),
        ("Candidate", "string", ".status.candidateRevision"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["ftr"],
                "categories": ["finetune"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p} for n, t, p in columns
                    ],
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by `python -m ftrelease.api.crd --write` from operator/ftrelease/api. Do not edit.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {CRD_FILE}")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        CRD_FILE.parent.mkdir(parents=True, exist_ok=True)
        CRD_FILE.write_text(text)
        print(f"wrote {CRD_FILE}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
