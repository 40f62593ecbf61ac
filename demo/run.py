"""`make demo`: the whole idea in one command, on this machine, with real parts.

A real control plane and Prometheus (built from the Go module proxy, cached), the operator
running with its own ServiceAccount's RBAC and analysis on, and model-server pods that really
run (the local kubelet, tests/cluster/kubelet.py) on tiny models trained here in seconds: a
base model and three LoRA adapters. v1 is the stable fine-tune; v2 is a good refresh; v3 breaks
the declared JSON output format on the refund questions (30% of them). Requests come from the
gateway STAND-IN (tests/cluster/gateway.py), which plays the data plane of the HTTPRoute the
operator writes. The operator walks v2 through shadow, 25%, 50% and 100% and promotes it, then
catches v3 on its format metric and rolls it back. The demo ends with a summary and a PNG
timeline of weights and metric rates, and exits 0 when both outcomes happened as they should."""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ftrelease.api.resource import GROUP, PLURAL, VERSION  # noqa: E402
from ftrelease.api.revision import revision_of  # noqa: E402
from ftrelease.api.validation import validate_release  # noqa: E402
from kubernetes import client, config  # noqa: E402
from rich.console import Console, Group  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.panel import Panel  # noqa: E402
from rich.table import Table  # noqa: E402

from demo.timeline import Timeline  # noqa: E402
from tests.api_cases import load_example  # noqa: E402
from tests.cluster.gateway import GatewayStandIn  # noqa: E402
from tests.cluster.localcluster import REPO_ROOT, LocalCluster, build_binaries  # noqa: E402
from tests.cluster.localprometheus import LocalPrometheus  # noqa: E402
from tests.e2e.conftest import TinyModels, bind_models_claim  # noqa: E402
from tests.operator_process import OperatorProcess  # noqa: E402
from tests.tiny_models import (  # noqa: E402
    SUPPORT_OUTPUT_FORMAT,
    SUPPORT_QUESTIONS,
    SUPPORT_SYSTEM,
    build_support_models,
)

NAMESPACE = "demo"
NAME = "support-bot"
STAGES = [
    {"name": "shadow", "mirror": 100},
    {"name": "canary-25", "weight": 25},
    {"name": "canary-50", "weight": 50},
    {"name": "full", "weight": 100},
]
STAND_IN = "gateway stand-in"
DONE = {"Promoted", "RolledBack", "Failed", "Paused", "Gated"}
console = Console()
if not console.is_terminal:  # CI logs: wide enough for a status line, no live redraws
    console = Console(width=140)


class Steps:
    """Prints what each step does while it runs, and how long it took."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    @contextlib.contextmanager
    def __call__(self, what: str):
        console.print(f"[bold cyan]>[/] {what}")
        began = time.monotonic()
        yield
        console.print(f"  [green]done[/] in {time.monotonic() - began:.1f}s")

    def total(self) -> float:
        return time.monotonic() - self.started


VLLM_STAND_IN = "ghcr.io/finetune-release/vllm-stand-in:local"


def release_doc(
    models: TinyModels, adapter: str, stage_seconds: int, runtime: str = "builtin"
) -> dict[str, Any]:
    """The support-bot example, served from the tiny models by the builtin runtime, or by the
    vllm runtime (on this machine the local kubelet's vLLM stand-in, behind the real response
    checker)."""
    doc = models.use(load_example(), adapter)
    doc["metadata"]["namespace"] = NAMESPACE
    spec = doc["spec"]
    bundle = spec["bundle"]
    bundle["dataset"]["version"] = f"tickets-{adapter}"
    bundle["prompt"] = {"system": SUPPORT_SYSTEM, "outputFormat": SUPPORT_OUTPUT_FORMAT}
    spec["serving"] = {"runtime": runtime, "replicas": 1}
    if runtime == "vllm":  # run by the local kubelet: see tests/cluster/README.md
        spec["serving"]["image"] = VLLM_STAND_IN
    spec["strategy"] = {
        "stages": [
            {
                **stage,
                "duration": f"{stage_seconds}s",
                # Time enough to gather minSamples on a busy machine before Inconclusive.
                "maxDuration": f"{max(3 * stage_seconds, 90)}s",
            }
            if stage["name"] != "full"
            else stage
            for stage in STAGES
        ],
        "analysis": {
            "interval": "5s",
            "alpha": 0.01,
            "minSamples": 30,
            "onError": {"after": "1m", "action": "pause"},
            "metrics": [
                {"name": "errors", "template": "error-rate", "margin": 0.1},
                {"name": "format", "template": "format-invalid-rate", "margin": 0.02},
            ],
        },
        "scaleDownDelay": "5s",
        "abortScaleDownDelay": "5s",
    }
    return doc


def chat_request(rng: random.Random) -> tuple[str, dict[str, Any]]:
    question = rng.choice(SUPPORT_QUESTIONS)
    return "/v1/chat/completions", {
        "model": NAME,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 48,
        "temperature": 0,
    }


class Watcher:
    """Reads the release, its route (through the gateway stand-in) and its Events."""

    def __init__(self, kube: client.ApiClient, gateway: Any, timeline: Timeline) -> None:
        self.custom = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)
        self.gateway = gateway
        self.timeline = timeline
        self.seen_events: set[str] = set()

    def status(self) -> dict[str, Any]:
        release = self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, NAME)
        return release.get("status") or {}

    def events(self) -> list[tuple[str, str, str]]:
        items = self.core.list_namespaced_event(
            NAMESPACE, field_selector=f"involvedObject.name={NAME}"
        ).items
        items.sort(key=lambda e: e.last_timestamp or e.metadata.creation_timestamp)
        return [(e.metadata.name, e.reason, e.message) for e in items]

    def print_new_events(self, out: Console) -> None:
        for name, reason, message in self.events():
            if name not in self.seen_events:
                self.seen_events.add(name)
                out.print(f"  [dim]event[/] [bold]{reason}[/]: {message}")

    def follow(self, label: str, candidate: str, timeout: float) -> dict[str, Any]:
        """Shows the rollout of `candidate` live until it ends; returns the final status."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while time.monotonic() < deadline:
                status = self.status()
                routing = self.gateway.routing
                self.timeline.record(label, candidate, status, routing)
                self.print_new_events(live.console)
                live.update(self.view(label, candidate, status, routing))
                phase = status.get("phase")
                if status.get("stableRevision") == candidate or (
                    phase in DONE and phase != "Promoted"
                ):
                    break
                time.sleep(1)
        return status

    def view(self, label: str, candidate: str, status: dict, routing: Any) -> Panel:
        stage = status.get("stage") or {}
        weights = ", ".join(
            f"{name.removeprefix(NAME + '-')} {weight}" for name, weight in routing.weights
        )
        mirror = (
            f"; mirror {routing.mirror_percent:.0f}% to {routing.mirror.removeprefix(NAME + '-')}"
            if routing.mirror
            else ""
        )
        head = (
            f"phase [bold]{status.get('phase', '-')}[/]  stage [bold]{stage.get('name', '-')}"
            f"[/]  candidate {candidate}  stable {status.get('stableRevision', '-')}\n"
            f"route weights: {weights or '-'}{mirror}   [dim](HTTPRoute, as the {STAND_IN})[/]"
        )
        metrics = Table("metric", "outcome", "candidate", "stable", "evidence", "samples")
        for result in status.get("analysis") or []:
            metrics.add_row(
                result["metric"],
                result["outcome"],
                _percent(result.get("value")),
                _percent(result.get("stableValue")),
                _number(result.get("evidence")),
                str(result.get("samples", "-")),
            )
        traffic = Table(
            "backend", "answered 200", "other", "mirrored copies", title=f"sent by the {STAND_IN}"
        )
        for backend in sorted(
            {b for b, _ in self.gateway.sent} | {b for b, _ in self.gateway.mirrored}
        ):
            ok = self.gateway.sent[(backend, 200)]
            other = sum(n for (b, s), n in self.gateway.sent.items() if b == backend and s != 200)
            copies = sum(n for (b, _), n in self.gateway.mirrored.items() if b == backend)
            traffic.add_row(backend.removeprefix(NAME + "-"), str(ok), str(other), str(copies))
        message = status.get("message", "")
        return Panel(
            Group(head, metrics, traffic, f"[dim]{message}[/]"),
            title=f"{NAME}: {label}",
        )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    parser.add_argument("--stage-seconds", type=int, default=20)
    parser.add_argument("--rps", type=float, default=8.0, help="the stand-in's request rate")
    parser.add_argument("--keep", action="store_true", help="leave the cluster's files behind")
    parser.add_argument(
        "--runtime",
        choices=("builtin", "vllm"),
        default="builtin",
        help="vllm: the pods run a vLLM stand-in behind the response checker",
    )
    args = parser.parse_args(argv)

    step = Steps()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    running: list[Any] = []
    timeline = Timeline()
    outcomes: dict[str, dict[str, Any]] = {}
    try:
        with step(
            "Building kube-apiserver, controllers, etcd, KWOK and Prometheus from the Go module "
            "proxy (the first run takes about 9 minutes on 2 cores; later runs reuse the cache)"
        ):
            bin_dir = build_binaries()
        with step(
            "Starting the control plane on 127.0.0.1: etcd, kube-apiserver, controller-manager, "
            "scheduler, KWOK nodes and the local kubelet that runs model-server pods"
        ):
            cluster = LocalCluster(bin_dir=bin_dir, workdir=args.workdir / "cluster")
            running.append(cluster)
            cluster.start()
            kube = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        with step("Installing the operator's CRD and RBAC: kubectl apply -k manifests/"):
            cluster.kubectl("apply", "--server-side", "-k", str(REPO_ROOT / "manifests"))
        with step(
            "Training tiny models on the CPU: a base model and LoRA adapters v1 and v2 (good) "
            "and v3-bad (plain text instead of JSON on refund questions)"
        ):
            built = build_support_models(args.workdir / "models")
            models = TinyModels(args.workdir / "models", tuple(built.adapters))
            core = client.CoreV1Api(kube)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            bind_models_claim(core, NAMESPACE, args.workdir / "models")
        with step("Starting Prometheus; it finds the model-server pods through the apiserver"):
            prometheus = LocalPrometheus(
                workdir=args.workdir / "prometheus", binary=bin_dir / "prometheus"
            )
            running.append(prometheus)
            prometheus.start()
            prometheus.discover_pods(cluster.monitoring_kubeconfig())
        with step("Starting the operator with analysis on, as its ServiceAccount"):
            account = cluster.kubeconfig_for_service_account(
                "finetune-system", "finetune-release-operator"
            )
            operator = OperatorProcess(account, args.workdir)
            operator.prometheus_url = prometheus.url
            running.append(operator)
            operator.start()
        custom = client.CustomObjectsApi(kube)
        with step(
            "Applying FineTuneRelease support-bot with adapter v1 (the first revision goes "
            "straight to stable once its pod is ready)"
        ):
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                NAMESPACE,
                PLURAL,
                release_doc(models, "v1", args.stage_seconds, args.runtime),
            )
            watcher_status = _wait(custom, lambda s: s.get("phase") == "Promoted", 300)
            gateway = GatewayStandIn(kube, NAMESPACE, NAME, chat_request, rps=args.rps)
            watcher = Watcher(kube, gateway, timeline)
            watcher.print_new_events(console)
            console.print(f"  stable revision {watcher_status['stableRevision']} is serving")
        running.append(gateway)
        gateway.start()
        console.print(
            f"[bold cyan]>[/] Sending {args.rps:g} chat requests/s through the {STAND_IN} "
            "(tests/cluster/gateway.py: reads the HTTPRoute, resolves EndpointSlices)"
        )
        for adapter, label in (("v2", "v2, a good refresh"), ("v3-bad", "v3, breaks the format")):
            doc = release_doc(models, adapter, args.stage_seconds, args.runtime)
            with step(f"Rolling out {label}: kubectl apply of the new bundle"):
                release, _ = validate_release(doc)
                candidate = revision_of(release.spec.bundle)
                custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    NAMESPACE,
                    PLURAL,
                    NAME,
                    {"spec": {"bundle": doc["spec"]["bundle"]}},
                )
                status = watcher.follow(label, candidate, timeout=30 * args.stage_seconds + 300)
                outcomes[adapter] = {"candidate": candidate, **_outcome(status, candidate)}
                timeline.mark(f"{adapter} {outcomes[adapter]['outcome']}")
                console.print(
                    f"  {label}: [bold]{outcomes[adapter]['outcome']}[/] {outcomes[adapter]['reason']}"
                )
            if outcomes[adapter]["outcome"] == "RolledBack":
                with step(
                    "The failures, for people: kubectl finetune failures support-bot "
                    "(the incident record the rollback left: reason, bundle, flagged outputs)"
                ):
                    found = _failures(cluster, args.workdir / f"failures-{adapter}.jsonl")
                    outcomes[adapter]["failures"] = len(found)
                    _show_failure(found)
    finally:
        for part in reversed(running):
            with contextlib.suppress(Exception):
                part.stop()
    (args.workdir / "summary.json").write_text(json.dumps(outcomes, indent=2))
    picture = args.workdir / "timeline.png"
    if timeline.points:
        timeline.save(picture)
    ok = (
        outcomes.get("v2", {}).get("outcome") == "Promoted"
        and outcomes.get("v3-bad", {}).get("outcome") == "RolledBack"
        and "format" in outcomes["v3-bad"].get("reason", "")
    )
    summary = Table("adapter", "revision", "outcome", "reason", title="support-bot: what happened")
    for adapter, result in outcomes.items():
        summary.add_row(adapter, result["candidate"], result["outcome"], result["reason"])
    console.print(summary)
    console.print(f"timeline: {picture}" if timeline.points else "no timeline recorded")
    console.print(
        f"{'[green]demo passed' if ok else '[red]demo FAILED'}[/]: v2 promoted by analysis, v3 "
        f"rolled back on its format metric; {step.total():.0f}s in all"
    )
    if not args.keep:
        shutil.rmtree(args.workdir / "cluster", ignore_errors=True)
    return 0 if ok else 1


def _wait(custom: client.CustomObjectsApi, check: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = (
            custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, NAME).get(
                "status"
            )
            or {}
        )
        if check(status):
            return status
        time.sleep(1)
    raise TimeoutError(f"{NAME} did not get there in {timeout:.0f}s: {json.dumps(status)[:800]}")


def _failures(cluster: LocalCluster, out: Path, timeout: float = 60) -> list[dict[str, Any]]:
    """`kubectl finetune failures` once the record is written (right after the rollback)."""
    command = [sys.executable, "-m", "ftrelease.cli.main", "failures", NAME, "-n", NAMESPACE]
    command += ["--kubeconfig", str(cluster.kubeconfig)]
    deadline = time.monotonic() + timeout
    while True:
        exported = subprocess.run(command, capture_output=True, text=True, check=True)
        if exported.stdout.strip() or time.monotonic() > deadline:
            break
        time.sleep(1)
    out.write_text(exported.stdout)
    return [json.loads(line) for line in exported.stdout.splitlines()]


def _show_failure(lines: list[dict[str, Any]]) -> None:
    flagged = [line["sample"] for line in lines if (line["sample"] or {}).get("flags")]
    console.print(f"  {len(lines)} outputs kept, {len(flagged)} flagged; the first:")
    if flagged:
        sample = flagged[0]
        asked = next(m["content"] for m in reversed(sample["messages"]) if m["role"] == "user")
        console.print(f"    asked:    {asked}")
        console.print(f"    answered: {sample['response'][:200]}  {sample['flags']}")


def _outcome(status: dict[str, Any], candidate: str) -> dict[str, str]:
    if status.get("stableRevision") == candidate:
        return {"outcome": "Promoted", "reason": "every stage passed analysis"}
    history = next((h for h in status.get("history") or [] if h.get("revision") == candidate), {})
    return {
        "outcome": history.get("outcome") or status.get("phase", "unknown"),
        "reason": history.get("reason") or status.get("message", ""),
    }


if __name__ == "__main__":
    sys.exit(main())
