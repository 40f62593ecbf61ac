"""What the model answered, for people: `kubectl finetune samples NAME` shows the candidate's and
the stable's recent sampled outputs side by side, read from their pods through the apiserver's
pod proxy (operator/samples.py); `kubectl finetune failures NAME` exports the incident records
of candidates rolled back by analysis as JSON lines, one kept output per line, for review and
relabelling. Nothing here feeds training."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kubernetes.client import CoreV1Api
from rich.console import Console
from rich.table import Table

from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus
from ftrelease.operator.incidents import INCIDENT_LABEL, failure_lines, records
from ftrelease.operator.samples import RevisionSamples, read_samples
from ftrelease.rollout.types import IN_PROGRESS
from ftrelease.serving.pod import admin_port

SHOWN = 240  # characters of a prompt or an answer in the table (-o json has them whole)


def sides(body: dict[str, Any], revision: str | None) -> list[tuple[str, str]]:
    """(role, revision) to show: the one asked for; else the candidate (while one rolls out)
    and the stable."""
    st = FineTuneReleaseStatus.model_validate(body.get("status") or {})
    if revision:
        role = "stable" if revision == st.stable_revision else "revision"
        return [(role, revision)]
    shown = []
    candidate = st.candidate_revision
    if st.phase in IN_PROGRESS and candidate and candidate != st.stable_revision:
        shown.append(("candidate", candidate))
    if st.stable_revision:
        shown.append(("stable", st.stable_revision))
    return shown


def asked(sample: dict[str, Any]) -> str:
    """What the user asked: the last user message, or the prompt."""
    for message in reversed(sample.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    prompt = sample.get("prompt")
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def _cell(sample: dict[str, Any] | None) -> str:
    if sample is None:
        return ""
    flags = f"  [{', '.join(sample['flags'])}]" if sample.get("flags") else ""
    return f"> {asked(sample)[:SHOWN]}\n{str(sample.get('response'))[:SHOWN]}{flags}"


def samples(args: argparse.Namespace) -> int:
    from .control import Releases

    releases = Releases(args)
    body = releases.get(args.name)
    spec = FineTuneReleaseSpec.model_validate(body["spec"])
    shown = sides(body, args.revision)
    if not shown:
        print(f"{args.name} has no revision serving yet", file=sys.stderr)
        return 1
    found: dict[str, RevisionSamples] = {}
    for _, revision in shown:
        found[revision] = read_samples(
            releases.client,
            releases.namespace,
            args.name,
            revision,
            admin_port(spec.serving),
            limit=args.limit,
            flagged=args.flagged,
        )
    if args.output == "json":
        view = {role: {"revision": revision, **vars(found[revision])} for role, revision in shown}
        print(json.dumps(view, indent=2))
        return 0
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 200
    table = Table(*(f"{role.upper()} {revision}" for role, revision in shown), show_lines=True)
    for row in range(max(len(f.samples) for f in found.values())):
        table.add_row(*(_cell(nth(found[revision].samples, row)) for _, revision in shown))
    console.print(table)
    for role, revision in shown:
        f = found[revision]
        what = "flagged outputs" if args.flagged else "sampled outputs"
        console.print(f"{role} {revision}: {len(f.samples)} {what} from {f.pods} pod(s)")
        for error in f.errors:
            console.print(f"  not read: {error}")
    return 0


def nth(items: list[dict[str, Any]], index: int) -> dict[str, Any] | None:
    return items[index] if index < len(items) else None


def failures(args: argparse.Namespace) -> int:
    from .control import Releases

    releases = Releases(args)
    found = CoreV1Api(releases.client).list_namespaced_config_map(
        releases.namespace, label_selector=f"{INCIDENT_LABEL}={args.name}"
    )
    documents = records([releases.client.sanitize_for_serialization(c) for c in found.items])
    if args.revision:
        documents = [d for d in documents if d.get("revision", "").startswith(args.revision)]
    if not documents:
        print(f"{args.name}: no incident records", file=sys.stderr)
        return 0
    for line in failure_lines(documents):
        print(json.dumps(line, ensure_ascii=False))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the FineTuneRelease")
    parser.add_argument("--revision", help="only this revision (a prefix will do for failures)")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context")


def add_samples(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "samples", help="recent sampled outputs of the candidate and the stable, side by side"
    )
    _common(parser)
    parser.add_argument("--limit", type=_positive, default=10, help="per revision (default 10)")
    parser.add_argument(
        "--flagged", action="store_true", help="the flagged outputs (invalid format, refusals)"
    )
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    parser.set_defaults(func=samples)
    parser = sub.add_parser(
        "failures",
        help="incident records of rollbacks by analysis, as JSON lines (one output per line)",
    )
    _common(parser)
    parser.set_defaults(func=failures)
