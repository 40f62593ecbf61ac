"""One reconcile of one release: the cycle between the watch cache and the apiserver
(applier.KubeCluster), with its measurements taken beside it (measurements.Measurements), the
confirm webhooks asked beside it and its outbox handed to the notifier (notifications)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ftrelease.api.ownership import ReleaseRef
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus
from ftrelease.rollout import confirm, cycle
from ftrelease.rollout.commands import COMMANDS

from . import metrics
from .applier import KubeCluster
from .cache import Cache, Key
from .kube import Kube
from .measurements import Measurements
from .notifications import ConfirmAsker, Notifier

log = logging.getLogger(__name__)
CONFLICT_RETRY = 0.2  # seconds: the watch brings the newer release meanwhile


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        cache: Cache,
        measurements: Measurements | None = None,
        notifier: Notifier | None = None,
        confirmer: ConfirmAsker | None = None,
    ) -> None:
        self.kube = kube
        self.cache = cache
        self.measurements = measurements  # None: no analysis, stages complete on their clocks
        self.notifier = notifier
        self.confirmer = confirmer

    def reconcile(self, key: Key, now: datetime | None = None) -> float | None:
        """One cycle of the release `key` from the cache; seconds until it wants another."""
        body = self.cache.release(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None  # gone, or going: the garbage collector removes what it owns
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
            before = FineTuneReleaseStatus.model_validate(body.get("status") or {})
            cluster: cycle.Cluster = KubeCluster(self.kube, self.cache, ref, spec, body)
            observed = cluster.observe()
            annotations = meta.get("annotations") or {}
            commands = {k: v for k, v in annotations.items() if k in COMMANDS}
            release = cycle.Release(
                ref.name,
                ref.namespace,
                spec,
                before,
                meta.get("generation"),
                commands,
                bundle_manager(meta),
            )
            measured = measuring = None
            if self.measurements is not None:
                window = cycle.wanted(release, now)
                if window is not None:
                    measured = self.measurements.take(key, spec, window)
                    measuring = window if measured is None else None
            confirmations = None
            request = confirm.wanted(spec, before)
            if request is not None and self.confirmer is not None:
                confirmations = self.confirmer.take(key, body, request)
            decision = cycle.cycle(
                release,
                observed,
                now,
                analysis=self.measurements is not None,
                measured=measured,
                measuring=measuring,
                confirmations=confirmations,
            )
            try:
                cluster.apply(decision, observed)
            except ApiException as exc:
                if exc.status == 404 and not self.kube.exists(ref):
                    # Deleted while no watch saw it (a watch gap): forget it, never retry.
                    self.cache.delete_release(body)
                    return None
                if exc.status != 409:
                    raise
                log.info("%s/%s changed while deciding; deciding again", ref.namespace, ref.name)
                return CONFLICT_RETRY
        metrics.record(ref, before, decision)
        box = decision.status.notifications
        if self.notifier is not None and box is not None and box.pending:  # something to send
            self.notifier.wake(key)
        return decision.requeue_after


def bundle_manager(meta: dict) -> str | None:
    """Who last wrote spec.bundle, as the apiserver's managedFields name them: the field
    manager (kubectl-client-side-apply, argocd-controller, kustomize-controller...). The
    apiserver keeps no user for a spec write; commands carry their user themselves."""
    writes = [
        entry
        for entry in meta.get("managedFields") or []
        if "f:bundle" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    ]
    latest = max(writes, key=lambda e: e.get("time") or "", default=None)
    return latest.get("manager") if latest else None
