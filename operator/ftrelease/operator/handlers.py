"""kopf wiring: the only kopf importer. Handlers stay thin; Reconciler does one reconcile.

A watch event on a release reconciles it at once; a resync loop reconciles every release each
`interval` seconds, which is what moves the stage clocks and notices Deployments becoming
Available. No kopf timers: they would put a finalizer on every release, and a release could then
not be deleted while the operator is down."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import start_http_server

from ftrelease.analysis.prometheus import PrometheusSource
from ftrelease.api.models import GROUP, PLURAL, VERSION

from . import metrics
from .config import CONFIG
from .kube import Kube
from .reconcile import Reconciler

log = logging.getLogger(__name__)

_state: dict[str, Any] = {}
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)


def _reconcile(namespace: str, name: str) -> None:
    """Reconciles one release from a fresh read (never a stale event body: the status it holds
    is the resume point), one reconcile per release at a time."""
    kube: Kube = _state["kube"]
    with _locks[(namespace, name)]:
        try:
            body = client.CustomObjectsApi(kube.api).get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                metrics.forget(namespace, name)
                return
            raise
        if body["metadata"].get("deletionTimestamp"):
            return  # the garbage collector removes what it owns
        _state["reconciler"].reconcile(body)


def _resync(stop: threading.Event) -> None:
    kube: Kube = _state["kube"]
    api = client.CustomObjectsApi(kube.api)
    while not stop.wait(CONFIG.interval):
        try:
            if CONFIG.namespaces:
                items = [
                    item
                    for namespace in CONFIG.namespaces
                    for item in api.list_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL
                    )["items"]
                ]
            else:
                items = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
            for item in items:
                meta = item["metadata"]
                try:
                    _reconcile(meta["namespace"], meta["name"])
                except Exception:  # one release failing must not stop the others
                    log.exception("reconcile of %s/%s failed", meta["namespace"], meta["name"])
        except Exception:
            log.exception("resync failed; retrying in %ss", CONFIG.interval)


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False  # our own Events, one per transition, not per log line
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    kube = Kube()
    _state["kube"] = kube
    source = PrometheusSource(CONFIG.prometheus_url) if CONFIG.prometheus_url else None
    _state["reconciler"] = Reconciler(kube, source)
    if CONFIG.metrics_port:
        start_http_server(CONFIG.metrics_port, addr=CONFIG.metrics_address)
    stop = threading.Event()
    thread = threading.Thread(target=_resync, args=(stop,), name="resync", daemon=True)
    thread.start()
    _state["stop"] = stop
    log.info(
        "finetune-release-operator started; resync every %ss; analysis: %s",
        CONFIG.interval,
        f"Prometheus at {CONFIG.prometheus_url}" if source else "off (no --prometheus-url)",
    )


@kopf.on.cleanup()
def cleanup(**_: Any) -> None:
    if "stop" in _state:
        _state["stop"].set()


@kopf.on.event(GROUP, VERSION, PLURAL)
def on_release_event(type: str, namespace: str, name: str, **_: Any) -> None:
    if type == "DELETED":
        metrics.forget(namespace, name)
        return
    _reconcile(namespace, name)
