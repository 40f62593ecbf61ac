"""The operator's side of the cycle's Cluster protocol, for one release: what it owns, read from
the watch cache, and its Decision written to the apiserver, each answer written through into
the cache.

Write order: revision objects (so a candidate exists before traffic can reach it), then status
(so a restart resumes from what was decided), then the route (one write, and only when it
differs from what is in place), then the incident record of a rollback by analysis, eval Jobs,
deletions, consumed commands and Events."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ftrelease.api.bundle import Bundle
from ftrelease.api.ownership import RELEASE_LABEL, REVISION_LABEL, ReleaseRef, object_name
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus
from ftrelease.rollout.types import (
    Decision,
    IncidentPlan,
    Observed,
    ObservedJob,
    ObservedRevision,
)
from ftrelease.serving.evaljob import EVAL_JOB_LABEL, eval_job
from ftrelease.serving.objects import applied_digest, revision_objects
from ftrelease.serving.pod import BUNDLE_FILE, admin_port
from ftrelease.traffic.routers import ROUTERS

from . import metrics
from .cache import Cache
from .incidents import record_incident
from .jobs import failure_reason, job_state, termination_message
from .kube import REVISION_KINDS, Kube
from .pods import event_problem, pod_problem

log = logging.getLogger(__name__)


@dataclass
class KubeCluster:
    """One release (`body`, as the cache has it) on the apiserver."""

    kube: Kube
    cache: Cache
    ref: ReleaseRef
    spec: FineTuneReleaseSpec
    body: dict[str, Any]

    def observe(self) -> Observed:
        ref, cache = self.ref, self.cache
        router = ROUTERS[self.spec.traffic.provider]
        config_maps = cache.owned("ConfigMap", ref)
        revisions = {}
        status = self.body.get("status") or {}
        # The revisions whose missing pods hold something up: the candidate, a rollback target.
        awaited = {
            status.get("candidateRevision"),
            (status.get("rollingBackTo") or {}).get("revision"),
        }
        for name, deployment in cache.owned("Deployment", ref).items():
            revision = deployment["metadata"]["labels"].get(REVISION_LABEL)
            if not revision or name != object_name(ref.name, revision):
                continue
            replicas = deployment["spec"].get("replicas") or 0
            available = _is_available(deployment)
            ready = _available_replicas(deployment)
            revisions[revision] = ObservedRevision(
                revision=revision,
                replicas=replicas,
                ready_replicas=ready,
                available=available,
                bundle=_bundle(config_maps.get(name)),
                applied=applied_digest(deployment),
                unavailable=(
                    self._pods_problem(
                        f"{RELEASE_LABEL}={ref.name},{REVISION_LABEL}={revision}", revision
                    )
                    if ready < replicas and revision in awaited
                    else None
                ),
            )
        found = cache.owned(router.kind, ref).get(ref.name)
        route = router.read_route(ref, found) if found else None
        problem = router.route_problem(found) if found else None
        return Observed(
            revisions=revisions, route=route, route_problem=problem, eval_jobs=self._eval_jobs()
        )

    def _eval_jobs(self) -> dict[str, ObservedJob]:
        """The release's eval Jobs. An ended one whose result status does not have yet is read
        from its pod (its termination message): once, since status keeps it from then on."""
        recorded = {
            r.get("job"): r.get("state") for r in (self.body.get("status") or {}).get("evals") or []
        }
        jobs = {}
        for name, job in self.cache.owned("Job", self.ref).items():
            state, why, started, finished = job_state(job)
            message: str | None = why
            waiting = None
            if state == "Running" and not (job.get("status") or {}).get("ready"):
                # Its pod has not started: what it waits on (not once it runs, no reads then).
                waiting = self._pods_problem(f"{EVAL_JOB_LABEL}={name}", f"job {name}")
            elif state != "Running" and recorded.get(name) in (None, "Running"):
                message = self._job_message(name, state, why)
            jobs[name] = ObservedJob(name, state, message, started, finished, waiting)
        return jobs

    def _job_message(self, name: str, state: str, why: str) -> str | None:
        try:
            pods = self.kube.pods(self.ref.namespace, f"{EVAL_JOB_LABEL}={name}")
        except Exception as exc:  # read again on the next reconcile
            log.info("%s: pods of job %s not read: %s", self.ref.name, name, exc)
            return why if state == "Failed" else None
        if state == "Failed":
            return failure_reason(why, pods)
        return termination_message(pods, succeeded=True) or ""  # "": none, and none to come

    def _record_incident(self, plan: IncidentPlan) -> None:
        """After the route is back on stable: a record that fails to be kept is said in an
        Event, and holds up nothing (the rollback is done)."""
        try:
            name = record_incident(self.kube, self.ref, plan, admin_port(self.spec.serving))
        except Exception as exc:
            log.exception("%s: the incident record of %s", self.ref.name, plan.revision)
            message = f"no incident record of {plan.revision}: {type(exc).__name__}: {exc}"
            self.kube.event(self.ref, "Warning", "IncidentNotRecorded", message)
            return
        message = f"incident record {name}: kubectl finetune failures {self.ref.name}"
        self.kube.event(self.ref, "Normal", "IncidentRecorded", message)

    def _pods_problem(self, selector: str, whose: str) -> str | None:
        """Why the selected pods are not ready, as their status or Events say. Read only while
        something waits on them (not cached), and a failed read only leaves the reason unknown:
        it is a courtesy, nothing depends on it."""
        try:
            unready = [p for p in self.kube.pods(self.ref.namespace, selector) if not _pod_ready(p)]
            if found := pod_problem(unready):
                return found
            names = [p["metadata"]["name"] for p in unready]
            return event_problem(self.kube.pod_events(self.ref.namespace, names))
        except Exception as exc:
            log.info("%s: pods of %s not read: %s", self.ref.name, whose, exc)
            return None

    def apply(self, decision: Decision, observed: Observed) -> None:
        """Writes the Decision; each answer goes into the cache (write-through)."""
        ref, spec, body = self.ref, self.spec, self.body
        for p in decision.revisions:
            found = observed.revisions.get(p.revision)
            if p.bundle is not None:
                objects = revision_objects(ref, p.revision, spec, p.bundle, p.replicas, p.role)
                planned = next(o for o in objects if o["kind"] == "Deployment")
                # In place as last applied: no writes on every reconcile. A retired revision
                # was scaled since (its replicas apart from the digest), so they are compared.
                if not (found and found.applied == applied_digest(planned)):
                    for obj in objects:
                        self.cache.put_owned(obj["kind"], self.kube.apply(obj), only_newer=True)
                    continue
            if found and found.replicas != p.replicas:
                scaled = self.kube.scale(
                    ref.namespace, object_name(ref.name, p.revision), p.replicas
                )
                self.cache.put_owned("Deployment", scaled, only_newer=True)

        patch = status_patch(body.get("status") or {}, decision.status)
        if patch is not None:
            # Onto the version decided from: a 409 means the release changed meanwhile (a
            # command, a new bundle, another replica's write) and nothing more is written.
            written = self.kube.patch_status(ref, patch, body["metadata"].get("resourceVersion"))
            self.cache.put_release(written, only_newer=True)

        if decision.wants_route_write(observed):
            assert decision.route is not None
            router = ROUTERS[spec.traffic.provider]
            # The matches of the first backend's revision: the stable's during a
            # rollout, the candidate's once it is promoted.
            first = observed.revisions.get(decision.route.weights[0][0])
            bundle = first.bundle if first and first.bundle else spec.bundle
            route = router.route_object(ref, spec, decision.route, bundle.routing.matches)
            self.cache.put_owned(router.kind, self.kube.apply(route), only_newer=True)
            metrics.ROUTE_WRITES.labels(ref.namespace, ref.name).inc()

        if decision.incident is not None:
            self._record_incident(decision.incident)

        jobs = self.cache.owned("Job", ref)
        for plan in decision.eval_jobs:  # created once; a Job is not changed afterwards
            if plan.name not in jobs:
                job = self.kube.apply(eval_job(ref, spec, plan))
                self.cache.put_owned("Job", job, only_newer=True)

        for revision in decision.delete:
            for api_version, kind in REVISION_KINDS:  # the Deployment first
                name = object_name(ref.name, revision)
                gone = self.cache.owned(kind, ref).get(name)
                self.kube.delete(api_version, kind, ref.namespace, name)
                if gone is not None:
                    self.cache.delete_owned(kind, gone)
            for job in self.cache.owned("Job", ref).values():  # and its eval Jobs, pods too
                if job["metadata"]["labels"].get(REVISION_LABEL) == revision:
                    name = job["metadata"]["name"]
                    self.kube.delete("batch/v1", "Job", ref.namespace, name, cascade=True)
                    self.cache.delete_owned("Job", job)

        if decision.consumed_commands:
            written = self.kube.remove_annotations(ref, decision.consumed_commands)
            self.cache.put_release(written, only_newer=True)
        for event in decision.events:
            self.kube.event(ref, event.type, event.reason, event.message)
            log.info("%s/%s %s: %s", ref.namespace, ref.name, event.reason, event.message)


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


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
