"""The operator's engine on the real control plane: commands act while Prometheus hangs, and a
standby takes over from a killed leader with no write from two replicas at once. Writes are
read from the apiserver's audit log (by each replica's user agent), not from the operator."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from ftrelease.rollout.commands import ABORT

from tests.cluster.localcluster import LocalCluster
from tests.cluster.processes import free_port, wait_until
from tests.e2e.conftest import Releases, new_version, release_doc
from tests.e2e.test_rollout import NAME, in_long_canary, promoted_first
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

WRITES = {"create", "update", "patch", "delete"}


class HungServer:
    """A port that accepts connections and never answers: a Prometheus that hangs."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self.connections.append(self._listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:  # closed
                return

    def __enter__(self) -> HungServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for connection in self.connections:
            connection.close()
        self._listener.close()


@pytest.fixture
def restarted_operator(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The session's operator, for a test that restarts it with other settings; put back as
    it was afterwards."""
    yield operator
    operator.stop()
    operator.prometheus_url = ""
    operator.start()


def test_an_abort_is_acted_on_while_prometheus_hangs(
    restarted_operator: OperatorProcess, releases: Releases
):
    with HungServer() as prometheus:
        restarted_operator.stop()
        restarted_operator.prometheus_url = prometheus.url
        restarted_operator.start()
        doc = release_doc(stage_seconds=120)
        doc["spec"]["strategy"]["analysis"] = {
            "interval": "2s",
            "minSamples": 10,
            "metrics": [{"name": "errors", "template": "error-rate"}],
        }
        stable = promoted_first(releases, doc)
        releases.patch(NAME, new_version("v2"))
        releases.wait(NAME, "shadow started", lambda s: (s.get("stage") or {}).get("startedAt"))
        wait_until("a measurement waits on the hung Prometheus", lambda: prometheus.connections, 30)
        asked = time.monotonic()
        releases.patch(NAME, {"metadata": {"annotations": {ABORT: "on-call: metrics hang"}}})
        releases.wait_route(NAME, (((stable, 100),), None, 0), timeout=10)
        took = time.monotonic() - asked
        status = releases.status(NAME)
        assert status["phase"] == "RolledBack"
        assert "on-call: metrics hang" in status["message"]
        # Prometheus answers in 10 s at best (its timeout): the abort did not wait for it.
        assert took < 3, f"abort took {took:.1f}s"
        print(f"abort to route with Prometheus hung: {took:.2f}s")


def writes_by_replica(
    cluster: LocalCluster, since: float, resource: str | None = None
) -> dict[str, list[float]]:
    """The operator's writes since `since` (epoch seconds), leases aside, by user agent; only
    those on `resource` if given."""
    found: dict[str, list[float]] = {}
    for event in cluster.audit_events():
        agent = event.get("userAgent", "")
        ref = event.get("objectRef") or {}
        if not agent.startswith("finetune-release-operator/") or event["verb"] not in WRITES:
            continue
        if ref.get("resource") == "leases" or event.get("stage") != "ResponseComplete":
            continue
        if resource is not None and ref.get("resource") != resource:
            continue
        at = datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp()
        if at >= since:
            found.setdefault(agent.split("/", 1)[1], []).append(at)
    return found


def test_the_standby_takes_over_from_a_killed_leader_keeping_the_stage_clock(
    installed: LocalCluster, operator: OperatorProcess, releases: Releases, tmp_path
):
    standby = OperatorProcess(operator.kubeconfig, tmp_path, name="standby")
    standby.start()
    try:
        since = time.time()
        started, _ = in_long_canary(releases)  # canary-1: 30 s
        before = writes_by_replica(installed, since)
        assert list(before) and all(a.startswith("operator_") for a in before), before
        killed = time.time()
        operator.kill()
        # The standby acts: the stage ends on its own clock, 30 s from `started`.
        status = releases.wait(
            NAME, "canary-10", lambda s: (s.get("stage") or {}).get("name") == "canary-10", 60
        )
        ended = time.time()
        clock = datetime.fromisoformat(started).timestamp()
        assert ended - clock < 30 + 8, "the stage ended on its clock, not restarted at takeover"
        releases.wait_phase(NAME, "Promoted", timeout=60)
        writes = writes_by_replica(installed, since)
        old = [
            at for agent, times in writes.items() if agent.startswith("operator_") for at in times
        ]
        new = [
            at for agent, times in writes.items() if agent.startswith("standby_") for at in times
        ]
        assert new, writes
        # One writer at a time: every write of the old leader comes before the standby's first.
        assert max(old) < min(new) and max(old) <= killed
        failover = min(new) - killed
        print(f"failover: standby's first write {failover:.1f}s after SIGKILL of the leader")
        assert failover <= 15
        assert status["stage"]["name"] == "canary-10"
        # The route was left as it was at takeover: the standby's first route write is the one
        # that ends the stage, on the stage's clock.
        routes = writes_by_replica(installed, killed, "httproutes")
        first_route = min(
            t for agent, ts in routes.items() if agent.startswith("standby_") for t in ts
        )
        assert first_route >= clock + 30 - 0.5, (first_route - clock, routes)
    finally:
        standby.stop()
        if operator.process is None:
            operator.start()


def test_a_paused_leader_that_wakes_after_the_hand_over_writes_nothing(
    installed: LocalCluster, operator: OperatorProcess, releases: Releases, tmp_path
):
    """SIGSTOP stands for a long GC pause or a network partition: the leader's lease runs out
    while it cannot tell. When it wakes, the standby leads, and it must not write."""
    standby = OperatorProcess(operator.kubeconfig, tmp_path, name="standby")
    standby.start()
    assert operator.process is not None and operator.process.pid is not None
    pid = operator.process.pid
    try:
        since = time.time()
        in_long_canary(releases)
        os.kill(pid, signal.SIGSTOP)
        paused = time.time()
        # Asleep past the stage's end: on waking, its own clock says the stage is over, and its
        # cache still says canary-1. Whatever it then decides, it must not write.
        releases.wait(
            NAME, "canary-10", lambda s: (s.get("stage") or {}).get("name") == "canary-10", 60
        )
        time.sleep(2)
        os.kill(pid, signal.SIGCONT)
        woke = time.time()
        wait_until(
            "the woken leader stands by",
            lambda: "lost the lease" in operator.log_path.read_text(),
            20,
        )
        releases.wait_phase(NAME, "Promoted", timeout=90)
        writes = writes_by_replica(installed, since)  # refused ones too: any request counts
        old = [t for a, ts in writes.items() if a.startswith("operator_") for t in ts]
        new = [t for a, ts in writes.items() if a.startswith("standby_") for t in ts]
        assert old and new
        # One writer at a time: the standby's first write comes after the leader froze and
        # after its last; the woken leader writes nothing (a request already on the wire when
        # it froze may reach the apiserver just after `paused`, never after it woke).
        assert paused < min(new) and max(old) < min(new), (paused, max(old), min(new))
        assert max(old) < woke, "the woken leader wrote"
        print(f"paused leader woke {woke - paused:.1f}s later; no write after the hand-over")
    finally:
        os.kill(pid, signal.SIGCONT)  # never leave it stopped
        standby.stop()
