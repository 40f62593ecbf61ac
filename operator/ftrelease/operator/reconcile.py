"""One reconcile of one release: read what is, ask the planner, apply its Decision.

Write order: revision objects (so a candidate exists before traffic can reach it), then status
(so a restart resumes from what was decided), then the route (one write, and only when it
differs from what is in place), then deletions, consumed commands and Events."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ftrelease.analysis.measure import from_source
from ftrelease.analysis.source import MetricSource
from ftrelease.api.models import Bundle, FineTuneReleaseSpec, FineTuneReleaseStatus
from ftrelease.api.ownership import REVISION_LABEL, ReleaseRef, object_name
from ftrelease.rollout import cycle
from ftrelease.rollout.types import COMMANDS, Decision, Observed, ObservedRevision
from ftrelease.serving.objects import applied_digest, revision_objects
from ftrelease.serving.runtimes import BUNDLE_FILE
from ftrelease.traffic.routers import ROUTERS, Router

from . import metrics
from .kube import REVISION_KINDS, Kube, Owned

log = logging.getLogger(__name__)


def observe(ref: ReleaseRef, owned: Owned, router: Router) -> Observed:
    revisions = {}
    for name, deployment in owned.deployments.items():
        revision = deployment["metadata"]["labels"].get(REVISION_LABEL)
        if not revision or name != object_name(ref.name, revision):
            continue
        revisions[revision] = ObservedRevision(
            revision=revision,
            replicas=deployment["spec"].get("replicas") or 0,
            ready_replicas=_available_replicas(deployment),
            available=_is_available(deployment),
            bundle=_bundle(owned.config_maps.get(name)),
            applied=applied_digest(deployment),
        )
    route = router.read_route(ref, owned.route) if owned.route else None
    return Observed(revisions=revisions, route=route)


def _current(deployment: dict[str, Any]) -> bool:
    status = deployment.get("status") or {}
    return (status.get("observedGeneration") or 0) >= deployment["metadata"].get("generation", 0)


def _is_available(deployment: dict[str, Any]) -> bool:
    conditions = (deployment.get("status") or {}).get("conditions") or []
    available = any(c["type"] == "Available" and c["status"] == "True" for c in conditions)
    return available and _current(deployment)


def _available_replicas(deployment: dict[str, Any]) -> int:
    status = deployment.get("status") or {}
    if not _current(deployment):
        return 0
    # Pods of the current template that are available; old ones do not count.
    return min(status.get("availableReplicas") or 0, status.get("updatedReplicas") or 0)


def _bundle(config_map: dict[str, Any] | None) -> Bundle | None:
    if not config_map:
        return None
    try:
        document = json.loads((config_map.get("data") or {})[BUNDLE_FILE])
        return Bundle.model_validate(document["bundle"])
    except (KeyError, ValueError, ValidationError):
        return None


def merge_patch(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `current` into `desired`: keys that went away
    are sent as null at any depth (a merge patch otherwise keeps them), lists are replaced."""
    patch: dict[str, Any] = {key: None for key in current if key not in desired}
    for key, value in desired.items():
        before = current.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before:
            patch[key] = value
    return patch


def status_patch(current: dict[str, Any], new: FineTuneReleaseStatus) -> dict[str, Any] | None:
    """The status merge patch, or None when nothing changed; kopf's own field is left alone."""
    ours = {k: v for k, v in current.items() if k != "kopf"}
    return merge_patch(ours, new.to_wire()) or None


class Reconciler:
    def __init__(self, kube: Kube, source: MetricSource | None = None) -> None:
        self.kube = kube
        self.source = source  # None: no analysis, stages complete on their clocks

    def reconcile(self, body: dict[str, Any], now: datetime | None = None) -> Decision | None:
        now = now or datetime.now(UTC)
        meta = body["metadata"]
        ref = ReleaseRef(meta["name"], meta["namespace"], meta["uid"])
        with metrics.RECONCILE_SECONDS.time():
            try:
                spec = FineTuneReleaseSpec.model_validate(body.get("spec") or {})
            except ValidationError as exc:
                # The CRD refuses such specs; one can only come from an older schema. Hold.
                log.error("release %s/%s has an invalid spec: %s", ref.namespace, ref.name, exc)
                return None
            current = body.get("status") or {}
            before = FineTuneReleaseStatus.model_validate(current)
            router = ROUTERS[spec.traffic.provider]
            owned = self.kube.owned(ref, (router.api_version, router.kind))
            observed = observe(ref, owned, router)
            annotations = meta.get("annotations") or {}
            commands = {k: v for k, v in annotations.items() if k in COMMANDS}
            release = cycle.Release(
                ref.name, ref.namespace, spec, before, meta.get("generation"), commands
            )
            measure = (
                from_source(self.source, spec.serving.runtime) if self.source is not None else None
            )
            decision = cycle.run(release, observed, now, measure)
            self.apply(ref, spec, current, decision, observed)
        metrics.record(ref, before, decision)
        return decision

    def apply(
        self,
        ref: ReleaseRef,
        spec: FineTuneReleaseSpec,
        current_status: dict[str, Any],
        decision: Decision,
        observed: Observed,
    ) -> None:
        for p in decision.revisions:
            found = observed.revisions.get(p.revision)
            if p.bundle is not None:
                objects = revision_objects(ref, p.revision, spec, p.bundle, p.replicas, p.role)
                planned = next(o for o in objects if o["kind"] == "Deployment")
                if found and found.applied == applied_digest(planned):
                    continue  # in place as last applied: no writes on every resync
                for obj in objects:
                    self.kube.apply(obj)
            elif found and found.replicas != p.replicas:
                self.kube.scale(ref.namespace, object_name(ref.name, p.revision), p.replicas)

        patch = status_patch(current_status, decision.status)
        if patch is not None:
            self.kube.patch_status(ref, patch)

        if decision.wants_route_write(observed):
            assert decision.route is not None
            router = ROUTERS[spec.traffic.provider]
            # The matches of the first backend's revision: the stable's during a
            # rollout, the candidate's once it is promoted.
            first = observed.revisions.get(decision.route.weights[0][0])
            bundle = first.bundle if first and first.bundle else spec.bundle
            self.kube.apply(router.route_object(ref, spec, decision.route, bundle.routing.matches))
            metrics.ROUTE_WRITES.labels(ref.namespace, ref.name).inc()

        for revision in decision.delete:
            for api_version, kind in REVISION_KINDS:  # the Deployment first
                self.kube.delete(api_version, kind, ref.namespace, object_name(ref.name, revision))

        if decision.consumed_commands:
            self.kube.remove_annotations(ref, decision.consumed_commands)
        for event in decision.events:
            self.kube.event(ref, event.type, event.reason, event.message)
            log.info("%s/%s %s: %s", ref.namespace, ref.name, event.reason, event.message)
