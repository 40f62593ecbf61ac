"""Leader election on a coordination.k8s.io Lease, with the `kubernetes` client's LeaderElection
and LeaseLock. One replica leads; a standby keeps its watch cache warm and writes nothing.

No write in the moments around a hand-over: a standby takes the lease only once it has seen the
leader's record unchanged for `lease_duration`; the leader writes only within `renew_deadline`
of its last successful renewal, and every write has `lease_duration - renew_deadline` to
finish (its request timeout), so a leader that was paused or cut off stops writing before
anyone else may start. A leader that loses the lease (the apiserver away longer than
renew_deadline, or another replica leading) stops reconciling and stands by again for the lease,
in the same process: with one replica, it leads again once the apiserver is back."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from .kube import identity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTimes:
    lease_duration: int = 10
    renew_deadline: int = 6
    retry_period: int = 2

    @property
    def write_timeout(self) -> int:
        """The longest a write may take and still land before a standby can lead."""
        return self.lease_duration - self.renew_deadline


class Leadership:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        times: LeaseTimes,
        on_started: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.identity = identity()
        self.times = times
        lock = LeaseLock(name, namespace, self.identity)
        lock.api_instance = client.CoordinationV1Api(api)  # ours, not the global default client
        self._lock = lock
        self._on_started = on_started
        self._on_lost = on_lost
        self._leading = threading.Event()
        self._election = leaderelection.LeaderElection(
            electionconfig.Config(
                lock,
                lease_duration=times.lease_duration,
                renew_deadline=times.renew_deadline,
                retry_period=times.retry_period,
                onstarted_leading=self._started,
                onstopped_leading=self._stopped,
            )
        )

    def start(self) -> None:
        threading.Thread(target=self._run, name="leader-election", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                self._election.run()  # returns once the lease is lost
            except Exception:
                log.exception("leader election failed; standing by again")
                self._stopped()
            time.sleep(self.times.retry_period)

    def is_leader(self) -> bool:
        """True while this replica holds the lease and renewed it within renew_deadline."""
        if not self._leading.is_set():
            return False
        record = self._election.observed_record
        if record is None or record.holder_identity != self.identity:
            return False
        renewed_ms = self._election.observed_time_milliseconds
        return time.time() * 1000 - renewed_ms < self.times.renew_deadline * 1000

    def release(self) -> None:
        """On a clean stop: stop writing, then hand the lease back, so that the standby leads
        at its next retry instead of waiting for the lease to expire."""
        if not self.is_leader():
            return
        self._leading.clear()
        api = self._lock.api_instance
        lease = api.read_namespaced_lease(self._lock.name, self._lock.namespace)
        if lease.spec.holder_identity == self.identity:
            lease.spec.holder_identity = None
            api.replace_namespaced_lease(self._lock.name, self._lock.namespace, lease)
            log.info("%s released the lease", self.identity)

    def _started(self) -> None:
        log.info("%s leads: acquired the lease", self.identity)
        self._leading.set()
        self._on_started()

    def _stopped(self) -> None:
        if not self._leading.is_set():
            return
        self._leading.clear()
        log.error("%s lost the lease: standing by, writing nothing", self.identity)
        self._on_lost()
