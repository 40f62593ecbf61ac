"""Incident records: when analysis rolls a candidate back, the operator keeps what a person needs
to review it (the reason, the whole bundle, the analysis figures, and a bounded set of the
candidate's outputs: every flagged one it kept, then a random share), in a ConfigMap owned by
the release. `kubectl finetune failures` exports them as JSON lines for review and relabelling;
nothing is fed into training by the operator.

The records carry their own label (INCIDENT_LABEL), not the release label, so the operator's
watches and cache never hold them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from ftrelease.api.ownership import RELEASE_LABEL, REVISION_LABEL, ReleaseRef
from ftrelease.api.resource import API_VERSION
from ftrelease.rollout.types import IncidentPlan

from .kube import Kube
from .samples import RevisionSamples, read_samples

log = logging.getLogger(__name__)

INCIDENT_LABEL = "finetune.dev/incident-of"
INCIDENT_FILE = "incident.json"
INCIDENT_KIND = "FineTuneReleaseIncident"
KEEP = 10  # records per release; older ones are deleted
FLAGGED_LIMIT = 50  # the candidate's flagged outputs kept in a record
SAMPLED_LIMIT = 20  # and of its randomly sampled ones
TEXT_LIMIT = 4000  # characters of any one prompt or answer kept


def incident_name(release: str, plan: IncidentPlan) -> str:
    return f"{release[:200]}-incident-{plan.revision}-{plan.at:%Y%m%d%H%M%S}"


def _clip(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= TEXT_LIMIT else value[:TEXT_LIMIT] + "…[cut]"
    if isinstance(value, list):
        return [_clip(v) for v in value]
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    return value


def incident_document(
    ref: ReleaseRef, plan: IncidentPlan, flagged: RevisionSamples, sampled: RevisionSamples
) -> dict[str, Any]:
    """The record: flagged outputs first, then sampled ones not already among them."""
    samples = flagged.samples[:FLAGGED_LIMIT]
    seen = {(s["pod"], s.get("time")) for s in samples}
    samples += [s for s in sampled.samples if (s["pod"], s.get("time")) not in seen][:SAMPLED_LIMIT]
    errors = sorted(set(flagged.errors + sampled.errors))
    return {
        "apiVersion": API_VERSION,
        "kind": INCIDENT_KIND,
        "release": {"name": ref.name, "namespace": ref.namespace, "uid": ref.uid},
        "revision": plan.revision,
        "stableRevision": plan.stable,
        "time": plan.at.isoformat(),
        "reason": plan.reason,
        "stage": plan.stage.to_wire() if plan.stage else None,
        "bundle": plan.bundle.to_wire() if plan.bundle else None,
        "analysis": [r.to_wire() for r in plan.analysis],
        "samples": [_clip(s) for s in samples],
        "samplesFrom": {"pods": max(flagged.pods, sampled.pods), "errors": errors},
    }


def incident_config_map(ref: ReleaseRef, plan: IncidentPlan, document: dict) -> dict[str, Any]:
    meta = ref.metadata(incident_name(ref.name, plan))
    labels = meta["labels"]
    del labels[RELEASE_LABEL]  # kept out of the operator's watches (see above)
    labels.update({INCIDENT_LABEL: ref.name, REVISION_LABEL: plan.revision})
    meta["annotations"] = {"finetune.dev/reason": plan.reason[:1024]}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {INCIDENT_FILE: json.dumps(document, indent=1)},
    }


def record_incident(kube: Kube, ref: ReleaseRef, plan: IncidentPlan, admin_port: int) -> str:
    """Reads the candidate's outputs from its pods (still up: it scales down after
    abortScaleDownDelay), writes the record, and keeps the newest KEEP. Returns its name."""
    read = {
        "api": kube.api,
        "namespace": ref.namespace,
        "release": ref.name,
        "revision": plan.revision,
        "admin_port": admin_port,
    }
    flagged = read_samples(**read, limit=FLAGGED_LIMIT, flagged=True)
    sampled = read_samples(**read, limit=SAMPLED_LIMIT)
    document = incident_document(ref, plan, flagged, sampled)
    written = kube.apply(incident_config_map(ref, plan, document))
    records = kube.config_maps(ref.namespace, f"{INCIDENT_LABEL}={ref.name}")
    for old in sorted(records, key=lambda c: c["metadata"]["name"])[:-KEEP]:
        kube.delete("v1", "ConfigMap", ref.namespace, old["metadata"]["name"])
    return written["metadata"]["name"]


def records(config_maps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The incident documents in `config_maps`, oldest first; unreadable ones skipped."""
    found = []
    for config_map in config_maps:
        try:
            found.append(json.loads((config_map.get("data") or {})[INCIDENT_FILE]))
        except (KeyError, ValueError):
            log.warning("%s holds no incident record", config_map["metadata"]["name"])
    return sorted(found, key=lambda d: d.get("time") or "")


def failure_lines(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One line per kept output, each with its incident (for relabelling one at a time); an
    incident that kept no output is one line with "sample": null."""
    for document in documents:
        incident = {k: v for k, v in document.items() if k not in ("samples", "apiVersion")}
        incident["kind"] = INCIDENT_KIND
        for sample in document.get("samples") or [None]:
            yield {"incident": incident, "sample": sample, "label": None}
