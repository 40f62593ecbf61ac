"""`kubectl finetune status [NAME] [-A] [-o text|json|yaml] [--watch]`: one release in full
(phase, stage with the time it has left, each metric with its evidence against the bound that
decides it, history), or every release of the namespace (or of all, -A) as a table."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.console import Console, Group, RenderableType
from rich.table import Table

from ftrelease.api.durations import parse_duration
from ftrelease.api.resource import GROUP, PLURAL, VERSION
from ftrelease.api.status import FineTuneReleaseStatus

WATCH_INTERVAL = 2.0


def stage_line(body: dict[str, Any], now: datetime) -> str | None:
    """The current stage, its share, and how long it has left (or how long it has run)."""
    st = FineTuneReleaseStatus.model_validate(body.get("status") or {})
    if st.stage is None:
        return None
    share = f"mirror {st.stage.mirror}%" if st.stage.mirror else f"weight {st.stage.weight}%"
    if st.stage.effective_weight is not None:
        share += f" ({st.stage.effective_weight}% effective: the candidate's share of ready pods)"
    if st.stage.started_at is None:
        return f"stage {st.stage.index}: {st.stage.name}, {share}, not started (route moving)"
    elapsed = now - st.stage.started_at
    stages = (body.get("spec") or {}).get("strategy", {}).get("stages") or []
    declared = next((s for s in stages if s.get("name") == st.stage.name), {})
    timing = f"running for {_seconds(elapsed.total_seconds())}"
    if declared.get("duration"):
        left = (parse_duration(declared["duration"]) - elapsed).total_seconds()
        timing = f"{_seconds(max(left, 0))} of {declared['duration']} left"
    return f"stage {st.stage.index}: {st.stage.name}, {share}, {timing}"


def evidence_bound(body: dict[str, Any]) -> float:
    """The e-value at which the sequential judge decides: 1 / alpha."""
    alpha = (body.get("spec") or {}).get("strategy", {}).get("analysis", {}).get("alpha", 0.05)
    return 1 / float(alpha)


def release_view(body: dict[str, Any], now: datetime) -> RenderableType:
    st = FineTuneReleaseStatus.model_validate(body.get("status") or {})
    name = body["metadata"]["name"]
    parts: list[RenderableType] = [
        f"[bold]{name}[/bold]  phase [bold]{st.phase or '-'}[/bold]  "
        f"stable {st.stable_revision or '-'}  candidate {st.candidate_revision or '-'}"
    ]
    if st.message:
        parts.append(st.message)
    if st.paused_by is not None:
        why = f": {st.paused_by.reason}" if st.paused_by.reason else ""
        parts.append(
            f"[bold]paused[/bold] by {st.paused_by.by}{why} since {st.paused_by.at.isoformat()}"
            f" (kubectl finetune resume {name})"
        )
    if line := stage_line(body, now):
        parts.append(line)
    if st.stage and st.stage.hold:
        parts.append(f"[bold red]held:[/bold red] {st.stage.hold}")
    gate = st.gate
    if gate is not None and gate.revision == st.candidate_revision:
        verdict = {None: "measuring", True: "passed", False: "[bold red]GATED[/bold red]"}
        parts.append(
            f"eval gate {verdict[gate.passed]} ({gate.source}, {gate.suite} {gate.version}): "
            f"{gate.reason}  (kubectl finetune evals {name})"
        )
    for condition in st.conditions:
        if condition.type == "Analysis" and condition.status == "False":
            parts.append(f"[bold red]analysis:[/bold red] {condition.message}")
    if st.analysis:
        bound = evidence_bound(body)
        table = Table("metric", "outcome", "candidate", "stable", "evidence", "samples", "message")
        for r in st.analysis:
            evidence = "" if r.evidence is None else f"{r.evidence:.4g} of {bound:.4g}"
            table.add_row(
                r.metric,
                r.outcome,
                _num(r.value),
                _num(r.stable_value),
                evidence,
                str(r.samples or ""),
                r.message or "",
            )
        parts.append(table)
    parts += notification_lines(st)
    if st.rolling_back_to:
        request = st.rolling_back_to
        parts.append(
            f"[bold]rolling back[/bold] to {request.revision} (asked by {request.by}): traffic "
            f"moves once it has {request.pods_needed} ready pods"
        )
    if (
        st.history
        and st.history[0].outcome == "RolledBack"
        and st.history[0].ended_by == "analysis"
    ):
        parts.append(
            f"the outputs analysis rolled {st.history[0].revision} back on: "
            f"kubectl finetune failures {name}"
        )
    if st.history:
        table = Table("revision", "outcome", "ended by", "reason", "finished")
        for h in st.history:
            finished = h.finished_at.isoformat() if h.finished_at else ""
            table.add_row(h.revision, h.outcome, h.ended_by or "", h.reason, finished)
        parts.append(table)
    return Group(*parts)


def notification_lines(st: FineTuneReleaseStatus) -> list[str]:
    """Webhooks that are failing, and what they have not yet had (healthy ones say nothing)."""
    box = st.notifications
    if box is None:
        return []
    lines = []
    for name, state in box.webhooks.items():
        if state.error is None:
            continue
        waiting = sum(1 for n in box.pending if n.sequence > state.delivered)
        since = state.failing_since.isoformat() if state.failing_since else "?"
        lines.append(
            f"[bold red]webhook {name} failing[/bold red] since {since}: {state.error} "
            f"({waiting} notification{'s' if waiting != 1 else ''} waiting)"
        )
    if box.dropped:
        lines.append(f"{box.dropped} notifications dropped unsent: the outbox was full")
    return lines


def list_view(items: list[dict[str, Any]], all_namespaces: bool) -> Table:
    columns = ["NAMESPACE"] if all_namespaces else []
    table = Table(*columns, "NAME", "PHASE", "STAGE", "WEIGHT", "STABLE", "CANDIDATE", "MESSAGE")
    for body in items:
        st = FineTuneReleaseStatus.model_validate(body.get("status") or {})
        stage = st.stage
        weight = (
            ""
            if stage is None
            else (f"mirror {stage.mirror}%" if stage.mirror else f"{stage.weight}%")
        )
        row = [body["metadata"]["namespace"]] if all_namespaces else []
        table.add_row(
            *row,
            body["metadata"]["name"],
            st.phase or "",
            stage.name if stage else "",
            weight,
            st.stable_revision or "",
            st.candidate_revision or "",
            st.message or "",
        )
    return table


def status(args: argparse.Namespace) -> int:
    from .control import Releases

    releases = Releases(args)
    console = Console(soft_wrap=True)  # long messages stay on one line, greppable
    if not console.is_terminal:  # piped: wide enough that table cells are not wrapped
        console.width = 200

    def read() -> list[dict[str, Any]]:
        if args.name:
            return [releases.get(args.name)]
        if args.all_namespaces:
            found = releases.api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        else:
            found = releases.api.list_namespaced_custom_object(
                GROUP, VERSION, releases.namespace, PLURAL
            )
        return sorted(
            found["items"], key=lambda b: (b["metadata"]["namespace"], b["metadata"]["name"])
        )

    def show(items: list[dict[str, Any]]) -> None:
        if args.output in ("json", "yaml"):
            document: Any = (
                items[0] if args.name else {"apiVersion": "v1", "kind": "List", "items": items}
            )
            text = (
                json.dumps(document, indent=2)
                if args.output == "json"
                else yaml.safe_dump(document)
            )
            console.print(text, markup=False, highlight=False, soft_wrap=True)
        elif args.name:
            console.print(release_view(items[0], datetime.now(UTC)))
        elif items:
            console.print(list_view(items, args.all_namespaces))
        else:
            where = "any namespace" if args.all_namespaces else f"namespace {releases.namespace}"
            console.print(f"no FineTuneReleases in {where}")

    if not args.watch:
        show(read())
        return 0
    shown = None
    try:
        while True:  # a new view whenever what it shows changed, until interrupted
            items = read()
            view = json.dumps([i.get("status") for i in items], sort_keys=True, default=str)
            if view != shown:
                shown = view
                console.rule(datetime.now(UTC).strftime("%H:%M:%S"))
                show(items)
            time.sleep(WATCH_INTERVAL)
    except KeyboardInterrupt:
        return 0


def add_status(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "status",
        help="one release in full, or every release of the namespace (-A: of all)",
        description=__doc__,
    )
    parser.add_argument("name", nargs="?", help="the FineTuneRelease (default: list them all)")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("-A", "--all-namespaces", action="store_true")
    parser.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")
    parser.add_argument("-w", "--watch", action="store_true", help="show it again as it changes")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context")
    parser.set_defaults(func=status)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
