"""bench/rollback: from `kubectl finetune rollback` to the route at 100% on a warm target.

On the local control plane (KWOK nodes), with the operator as a real process under the
manifests' RBAC: one release is promoted twice (v0, then v1), so v0 is its previous stable,
kept warm (strategy.keepPreviousStable: one pod) once scaleDownDelay is over. Each run waits
until the target is warm again, then runs `kubectl finetune rollback NAME` as a user would (a
new process: the CLI's start, its SelfSubjectReview and its patch are part of the figure) and
polls the HTTPRoute until its only backend is the target. A rollback leaves the revision it left
as the previous stable, so the next run rolls back the other way.

Prints p50 and p95 and writes bench/rollback/results/results.json; the figures go in
bench/RESULTS.md. Run: `make bench-rollback` (about 3 minutes for 20 runs)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ftrelease.api.resource import GROUP, PLURAL, VERSION

from bench.platform import platform
from tests.api_cases import load_example
from tests.cluster.localcluster import LocalCluster
from tests.cluster.processes import wait_until

NAMESPACE = "bench"
NAME = "support-bot"
CAPACITY = {"cpu": "1000", "memory": "100Ti", "pods": "500", "nvidia.com/gpu": "100"}
RESULTS = Path(__file__).parent / "results"
POLL = 0.02  # seconds between reads of the route


def release(version: str) -> dict:
    doc = load_example()
    doc["metadata"] = {"name": NAME, "namespace": NAMESPACE}
    spec = doc["spec"]
    spec["bundle"]["dataset"]["version"] = version
    spec["serving"]["replicas"] = 2
    spec["strategy"].pop("analysis", None)
    spec["strategy"]["stages"] = [
        {"name": "canary", "weight": 50, "duration": "2s"},
        {"name": "full", "weight": 100},
    ]
    spec["strategy"]["scaleDownDelay"] = "1s"
    return doc


class Bench:
    def __init__(self, cluster: LocalCluster) -> None:
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.cluster = cluster
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)

    def status(self) -> dict:
        body = self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, NAME)
        return body.get("status") or {}

    def route_backends(self) -> list[tuple[str, int]]:
        route = self.custom.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", NAMESPACE, "httproutes", NAME
        )
        refs = route["spec"]["rules"][0]["backendRefs"]
        return [(b["name"].removeprefix(f"{NAME}-"), b["weight"]) for b in refs]

    def promote(self, version: str, create: bool = False) -> str:
        doc = release(version)
        if create:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, doc)
        else:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, NAME, {"spec": doc["spec"]}
            )
        wait_until(
            f"{version} promoted",
            lambda: (
                self.status().get("phase") == "Promoted"
                and not self.status().get("candidateRevision")
                and self.status().get("observedGeneration") is not None
            ),
            120,
        )
        return self.status()["stableRevision"]

    def warm_target(self) -> str:
        """Waits until the release is at rest and its previous stable is kept warm."""
        found: dict[str, str] = {}

        def ready() -> bool:
            st = self.status()
            if st.get("rollingBackTo") or st.get("phase") not in ("Promoted", "RolledBack"):
                return False
            previous = next(
                (r["revision"] for r in st.get("retired") or [] if r.get("role") == "stable"),
                None,
            )
            if previous is None:
                return False
            deployment = self.apps.read_namespaced_deployment(f"{NAME}-{previous}", NAMESPACE)
            found["target"] = previous
            return deployment.spec.replicas == 1 and (deployment.status.ready_replicas or 0) >= 1

        wait_until("a warm previous stable", ready, 60, interval=0.2)
        return found["target"]

    def rollback(self, run: int) -> tuple[float, float]:
        """Seconds from the command's start to the route on the target, and from the CLI's
        exit (its patch written some milliseconds before) to the route."""
        target = self.warm_target()
        command = [
            sys.executable,
            "-m",
            "ftrelease.cli.main",
            "rollback",
            NAME,
            "-n",
            NAMESPACE,
            "--reason",
            f"bench run {run}",
            "--kubeconfig",
            str(self.cluster.kubeconfig),
        ]
        began = time.monotonic()
        subprocess.run(command, check=True, capture_output=True)
        asked = time.monotonic()
        while self.route_backends() != [(target, 100)]:
            time.sleep(POLL)
        done = time.monotonic()
        return done - began, done - asked


def _percentiles(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "p95": values[min(len(values) - 1, int(0.95 * len(values)))],
        "max": values[-1],
        "all": [round(v, 3) for v in values],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    total, after_patch = [], []
    with platform("ftrelease-bench-rollback-", NAMESPACE, 1, CAPACITY) as found:
        bench = Bench(found.cluster)
        bench.promote("v0", create=True)
        bench.promote("v1")
        for run in range(args.runs):
            whole, routed = bench.rollback(run)
            total.append(whole)
            after_patch.append(routed)
            print(
                f"run {run}: {whole:.3f} s (of which {routed:.3f} s after the CLI exited)",
                flush=True,
            )
    results = {
        "command_to_route_s": _percentiles(total),
        "cli_exit_to_route_s": _percentiles(after_patch),
    }
    for name, figures in results.items():
        print(f"{name}: p50 {figures['p50']:.3f}  p95 {figures['p95']:.3f}  (n={figures['n']})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
