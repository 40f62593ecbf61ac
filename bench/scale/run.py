"""bench/scale: the operator at N releases on the local control plane (KWOK nodes).

For each N in `--sizes` (the same cluster grows from one N to the next), with the operator as a
real process under the manifests' RBAC and no Prometheus (stages run on their clocks):

- idle: with every release Promoted and nothing changing, the requests the operator sends in
  `--idle-seconds`, read from the apiserver's audit log (reads, writes; watches and the
  leader's Lease renewals counted apart), per release per hour; and the operator's RSS.
- transitions: `--rollouts` releases get a new bundle at once; each walks canary (weight 50,
  `--stage-seconds`) then full. Lateness = the route write that ends the canary stage (audit
  log) minus the end of the stage's clock (status startedAt + duration).
- abort: `--aborts` releases in a long canary stage are aborted one after another; latency = the
  route write back to stable (audit log) minus the moment the abort annotation was written.
At the largest N, failover: a standby is started, `--rollouts` releases start a canary stage,
the leader is killed with SIGKILL mid-stage; failover = the standby's first write after the
kill, and the stages must still end on their clocks.

Prints a table per N and writes bench/scale/results/results.json. Figures go in
bench/RESULTS.md. Run: `make bench-scale` (about 15 minutes for 100, 300 and 1000 on 2 cores)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ftrelease.api.resource import GROUP, PLURAL, VERSION
from ftrelease.rollout.commands import ABORT

from bench.platform import platform
from tests.api_cases import load_example
from tests.cluster.localcluster import LocalCluster
from tests.cluster.processes import wait_until
from tests.operator_process import OperatorProcess

NAMESPACE = "bench"
CAPACITY = {"cpu": "100000", "memory": "1000Ti", "pods": "5000", "nvidia.com/gpu": "5000"}
AGENT = "finetune-release-operator/"
WRITES = {"create", "update", "patch", "delete"}
RESULTS = Path(__file__).parent / "results"


def release(name: str, version: str, canary_seconds: int) -> dict:
    doc = load_example()
    doc["metadata"] = {"name": name, "namespace": NAMESPACE}
    spec = doc["spec"]
    spec["bundle"]["dataset"]["version"] = version
    spec["serving"]["replicas"] = 1
    spec["serving"].pop("resources", None)
    spec["strategy"].pop("analysis", None)
    spec["strategy"]["stages"] = [
        {"name": "canary", "weight": 50, "duration": f"{canary_seconds}s"},
        {"name": "full", "weight": 100},
    ]
    spec["strategy"]["scaleDownDelay"] = "5s"
    spec["strategy"]["abortScaleDownDelay"] = "5s"
    return doc


class Bench:
    def __init__(self, cluster: LocalCluster, args: argparse.Namespace) -> None:
        self.cluster = cluster
        self.args = args
        self.api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.custom = client.CustomObjectsApi(self.api)
        self.names: list[str] = []
        self.version = 0

    # ---- releases -----------------------------------------------------------------------------

    def statuses(self) -> dict[str, dict]:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
        return {i["metadata"]["name"]: i.get("status") or {} for i in items["items"]}

    def wait_all(self, names: list[str], what: str, check, timeout: float = 1800) -> None:
        def done() -> bool:
            statuses = self.statuses()
            return all(check(statuses.get(n) or {}) for n in names)

        wait_until(f"{len(names)} releases {what}", done, timeout, interval=2)

    def grow(self, n: int) -> None:
        new = [f"r-{i:04d}" for i in range(len(self.names), n)]

        def create(name: str) -> None:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, release(name, "v0", 3600)
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, new))
        self.names += new
        self.wait_all(new, "Promoted", lambda s: s.get("phase") == "Promoted")

    def new_bundle(self, names: list[str], canary_seconds: int) -> None:
        self.version += 1

        def patch(name: str) -> None:
            doc = release(name, f"v{self.version}", canary_seconds)
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, name, {"spec": doc["spec"]}
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(patch, names))

    # ---- the audit log ------------------------------------------------------------------------

    def operator_requests(self, since: float, until: float) -> list[dict]:
        found = []
        for event in self.cluster.audit_events():
            if not event.get("userAgent", "").startswith(AGENT):
                continue
            if event.get("stage") != "ResponseComplete" and event["verb"] != "watch":
                continue
            at = _epoch(event["requestReceivedTimestamp"])
            if since <= at < until:
                found.append(event | {"at": at})
        return found

    def route_writes(self, since: float) -> dict[str, list[float]]:
        writes: dict[str, list[float]] = {}
        for event in self.operator_requests(since, float("inf")):
            ref = event.get("objectRef") or {}
            if ref.get("resource") == "httproutes" and event["verb"] in WRITES:
                writes.setdefault(ref.get("name", ""), []).append(event["at"])
        return {name: sorted(times) for name, times in writes.items()}

    # ---- measurements -------------------------------------------------------------------------

    def idle(self, operator: OperatorProcess) -> dict:
        since = time.time()
        time.sleep(self.args.idle_seconds)
        requests = self.operator_requests(since, time.time())
        n, hours = len(self.names), self.args.idle_seconds / 3600
        leases = [r for r in requests if (r.get("objectRef") or {}).get("resource") == "leases"]
        others = [r for r in requests if r not in leases]
        reads = [r for r in others if r["verb"] in ("get", "list")]
        writes = [r for r in others if r["verb"] in WRITES]
        watches = [r for r in others if r["verb"] == "watch"]
        return {
            "reads_per_release_hour": len(reads) / n / hours,
            "writes_per_release_hour": len(writes) / n / hours,
            "watch_requests": len(watches),
            "lease_requests_per_minute": len(leases) / (hours * 60),
            "rss_mb": operator.rss_bytes() / 2**20,
        }

    def canary_clocks(self, stop: threading.Event, clocks: dict[str, float]) -> None:
        """Records each release's canary startedAt as status shows it (polled every second;
        a stage lasts far longer)."""
        while not stop.wait(1.0):
            for name, status in self.statuses().items():
                stage = status.get("stage") or {}
                if stage.get("name") == "canary" and stage.get("startedAt"):
                    clocks[name] = _epoch(stage["startedAt"])

    def rollout(self, names: list[str], seconds: int, during=lambda: None) -> list[float]:
        """New bundles for `names`; once all are Promoted, how late each canary stage ended:
        the route write that ended it minus its clock's end."""
        clocks: dict[str, float] = {}
        stop = threading.Event()
        threading.Thread(target=self.canary_clocks, args=(stop, clocks), daemon=True).start()
        since = time.time()
        self.new_bundle(names, seconds)
        during()
        self.wait_all(names, "Promoted", lambda s: s.get("phase") == "Promoted", timeout=900)
        stop.set()
        writes = self.route_writes(since)
        late = []
        for name in names:
            end = clocks[name] + seconds
            late.append(next(t for t in writes[name] if t > clocks[name]) - end)
        return late

    def transitions(self) -> dict:
        late = self.rollout(self.names[: self.args.rollouts], self.args.stage_seconds)
        return _percentiles("transition_late_s", late)

    def aborts(self) -> dict:
        names = self.names[-self.args.aborts :]
        self.new_bundle(names, 3600)
        self.wait_all(
            names, "in canary", lambda s: (s.get("stage") or {}).get("startedAt"), timeout=600
        )
        asked = {}
        for name in names:
            asked[name] = time.time()
            self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                NAMESPACE,
                PLURAL,
                name,
                {"metadata": {"annotations": {ABORT: "bench"}}},
            )
        self.wait_all(names, "RolledBack", lambda s: s.get("phase") == "RolledBack", timeout=120)
        writes = self.route_writes(min(asked.values()))
        latency = [next(t for t in writes[n] if t >= asked[n]) - asked[n] for n in names]
        return _percentiles("abort_to_route_s", latency)

    def failover(self, leader: OperatorProcess, standby: OperatorProcess) -> dict:
        standby.start()
        killed: list[float] = []

        def kill_mid_stage() -> None:
            time.sleep(15)
            killed.append(time.time())
            leader.kill()

        late = self.rollout(self.names[: self.args.rollouts], 30, during=kill_mid_stage)
        first_write = min(
            r["at"]
            for r in self.operator_requests(killed[0], time.time())
            if r["userAgent"].startswith(AGENT + "standby_")
            and r["verb"] in WRITES
            and (r.get("objectRef") or {}).get("resource") != "leases"
        )
        log = standby.log_path.read_text()
        return {
            "failover_leads_s": _logged(log, "leads: acquired the lease") - killed[0],
            "failover_queued_s": _logged(log, "leading: every release queued") - killed[0],
            "failover_first_write_s": first_write - killed[0],
            **_percentiles("late_after_failover_s", late),
        }


def _logged(log: str, text: str) -> float:
    """When the operator's log first says `text` (its lines start with local time)."""
    line = next(line for line in log.splitlines() if text in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _percentiles(name: str, values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {f"{name}_n": 0}
    return {
        f"{name}_n": len(values),
        f"{name}_p50": statistics.median(values),
        f"{name}_p95": values[min(len(values) - 1, int(0.95 * len(values)))],
        f"{name}_max": values[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--rollouts", type=int, default=50)
    parser.add_argument("--aborts", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=120)
    parser.add_argument("--stage-seconds", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    results: dict[str, dict] = {}
    with platform("ftrelease-bench-scale-", NAMESPACE, 2, CAPACITY) as found:
        operator = found.operators[0]
        bench = Bench(found.cluster, args)
        for n in sizes:
            began = time.time()
            bench.grow(n)
            row = {"releases": n, "grow_s": time.time() - began}
            row |= bench.idle(operator)
            row |= bench.transitions()
            row |= bench.aborts()
            results[str(n)] = row
            print(json.dumps(row, indent=2), flush=True)
        results["failover"] = bench.failover(operator, found.operator("standby"))
        print(json.dumps(results["failover"], indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
