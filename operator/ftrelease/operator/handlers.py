"""kopf wiring: the only kopf importer. Watches feed the cache and the work queue; nothing here
decides anything.

- Watch events on releases and on what they own (Deployments, ConfigMaps, Services, HTTPRoutes,
  eval Jobs, selected server-side by the release label) update the cache and queue that release at once.
- Workers (bounded) reconcile queued releases from the cache; a Decision's requeue_after queues
  it again when a clock runs out. A cache resync (`--resync`) re-decides every release from
  memory now and then, with no API reads.
- Webhooks (spec.notifications) are sent and asked on threads of their own (notifications.py):
  a reconcile hands its outbox to the notifier and takes the confirm answers that are in.
- Both replicas list each kind once at start and then watch; only the one holding the Lease
  reconciles and writes. Taking the lease queues every release from the warm cache; losing it
  stops the reconciles (and lists again before leading again).
No kopf timers or change handlers: they would put finalizers and annotations on every release,
and a release could then not be deleted while the operator is down."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import kopf
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from prometheus_client import start_http_server

from ftrelease.analysis.prometheus import PrometheusSource
from ftrelease.api.ownership import RELEASE_LABEL
from ftrelease.api.resource import API_VERSION, GROUP, KIND, PLURAL, VERSION

from . import metrics
from .cache import Cache
from .config import CONFIG
from .kube import Kube, api_client
from .leader import Leadership, LeaseTimes
from .measurements import Measurements
from .notifications import ConfirmAsker, Notifier
from .reconcile import Reconciler
from .workqueue import WorkQueue

log = logging.getLogger(__name__)

# (api group, version, plural, kind) of everything a release owns.
OWNED = (
    ("apps", "v1", "deployments", "Deployment"),
    ("", "v1", "configmaps", "ConfigMap"),
    ("", "v1", "services", "Service"),
    ("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"),
    ("batch", "v1", "jobs", "Job"),
)

SEED_RETRY = 5.0  # seconds

_cache = Cache()
_seeded = threading.Event()
_state: dict[str, Any] = {}


def _queue() -> WorkQueue:
    return _state["queue"]


def _seed() -> None:
    """One list per kind, standby or not, so that the cache holds everything that exists before
    this replica decides anything (a decision on a half-filled cache could write a route back to
    stable mid-rollout). The watches keep it from then on: taking the lease reads nothing."""
    kube: Kube = _state["kube"]
    kinds = [(API_VERSION, KIND), *((f"{g}/{v}" if g else v, k) for g, v, _, k in OWNED)]
    while not _seeded.is_set():
        try:
            for api_version, kind in kinds:
                try:
                    items, listed_at = kube.list(api_version, kind, CONFIG.namespaces)
                except ResourceNotFoundError:
                    log.warning("%s is not served by this cluster; not seeding it", kind)
                    continue
                _cache.replace(kind, items, listed_at)
        except Exception:
            log.exception("seeding the cache failed; again in %ss", SEED_RETRY)
            time.sleep(SEED_RETRY)
            continue
        _seeded.set()
        log.info("cache seeded: %s", _cache.sizes())


def _lead() -> None:
    """This replica now holds the lease: reconcile every release, from the seeded cache."""
    _seeded.wait()
    if not _state["leadership"].is_leader():  # lost again while the cache was being listed
        return
    metrics.LEADER.set(1)
    queue = _queue()
    queue.open()
    for key in _cache.release_keys():
        queue.add(key)
    log.info("leading: every release queued (%s)", _cache.sizes())


def _lost() -> None:
    _queue().close()  # no new reconciles; writes in flight are refused by the lease check
    metrics.LEADER.set(0)
    # The apiserver may have been away: list again before leading again.
    _seeded.clear()
    threading.Thread(target=_seed, name="seed", daemon=True).start()


def _resync(stop: threading.Event) -> None:
    while not stop.wait(CONFIG.resync):
        for key in _cache.release_keys():
            _queue().add(key)


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False  # our own Events, one per transition, not per log line
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    for group, version, plural, _kind in OWNED:
        key = (group, version, plural) if group else (version, plural)
        settings.watching.label_selectors[key] = RELEASE_LABEL

    api = api_client()
    times = LeaseTimes(CONFIG.lease_duration, CONFIG.renew_deadline, CONFIG.retry_period)
    leadership = Leadership(api, CONFIG.lease_namespace, CONFIG.lease_name, times, _lead, _lost)
    kube = Kube(api, may_write=leadership.is_leader, write_timeout=times.write_timeout)
    queue = WorkQueue(lambda key: reconciler.reconcile(key), workers=CONFIG.workers)
    source = PrometheusSource(CONFIG.prometheus_url) if CONFIG.prometheus_url else None
    measurements = Measurements(source, CONFIG.measure_workers, done=queue.add) if source else None
    notifier = Notifier(kube, _cache, leadership.is_leader)
    reconciler = Reconciler(kube, _cache, measurements, notifier, ConfirmAsker(kube, queue.add))
    _state.update(kube=kube, queue=queue, leadership=leadership, stop=threading.Event())
    if CONFIG.metrics_port:
        start_http_server(CONFIG.metrics_port, addr=CONFIG.metrics_address)
    queue.start()
    threading.Thread(target=_seed, name="seed", daemon=True).start()
    threading.Thread(target=_resync, args=(_state["stop"],), name="resync", daemon=True).start()
    leadership.start()
    log.info(
        "finetune-release-operator %s started as a standby (lease %s/%s); %s workers; analysis: %s",
        leadership.identity,
        CONFIG.lease_namespace,
        CONFIG.lease_name,
        CONFIG.workers,
        f"Prometheus at {CONFIG.prometheus_url}" if source else "off (no --prometheus-url)",
    )


@kopf.on.cleanup()
def cleanup(**_: Any) -> None:
    if "stop" in _state:
        _state["stop"].set()
        _queue().stop()
        _state["leadership"].release()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_release_event(event: dict[str, Any], **_: Any) -> None:
    body = event["object"]
    if event["type"] == "DELETED":
        _cache.delete_release(body)
        metrics.forget(body["metadata"]["namespace"], body["metadata"]["name"])
        return
    _cache.put_release(body, only_newer=True)  # never over our own newer write-through copy
    if "queue" in _state:
        _queue().add((body["metadata"]["namespace"], body["metadata"]["name"]))


def _watch_owned(group: str, version: str, plural: str, kind: str) -> None:
    async def on_owned_event(event: dict[str, Any], **_: Any) -> None:
        body = event["object"]
        if event["type"] == "DELETED":
            key = _cache.delete_owned(kind, body)
        else:
            key = _cache.put_owned(kind, body, only_newer=True)
        if key is not None and "queue" in _state:
            _queue().add(key)

    resource = (group, version, plural) if group else (version, plural)
    kopf.on.event(*resource, labels={RELEASE_LABEL: kopf.PRESENT}, id=f"cache-{plural}")(
        on_owned_event
    )


for _owned in OWNED:
    _watch_owned(*_owned)
