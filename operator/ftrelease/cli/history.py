"""What changed between revisions, read from the release's status (every history entry keeps
its revision's whole bundle):

history NAME                 each rollout, newest first, with the bundle fields it changed
diff NAME REV_A REV_B        a field-level diff of two revisions' bundles (text as a text diff)
diff -f RELEASE.yaml         before applying: would the file start a rollout, and why

The diffing is pure (bundles in, lines out); only the commands read the cluster."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any

from kubernetes.client.exceptions import ApiException
from rich.console import Console
from rich.table import Table

from ftrelease.api.revision import revision_of
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus
from ftrelease.api.validation import is_release, validate_release

from .documents import read_documents

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2  # as `kubectl diff` and diff(1)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted.path: leaf}; lists index as [i], so one changed match is one path."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(flatten(inner, f"{prefix}.{key}" if prefix else key))
        return flat or {prefix: {}}
    if isinstance(value, list):
        flat = {}
        for index, inner in enumerate(value):
            flat.update(flatten(inner, f"{prefix}[{index}]"))
        return flat or {prefix: []}
    return {prefix: value}


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    a, b = flatten(before), flatten(after)
    return sorted(path for path in a.keys() | b.keys() if a.get(path, _GONE) != b.get(path, _GONE))


_GONE = object()


def field_diff(before: dict[str, Any], after: dict[str, Any], names: tuple[str, str]) -> list[str]:
    """One line per changed field ('~' changed, '+' added, '-' removed); text that spans lines
    (a system prompt) as a unified diff under its field."""
    a, b = flatten(before), flatten(after)
    lines: list[str] = []
    for path in changed_fields(before, after):
        old, new = a.get(path, _GONE), b.get(path, _GONE)
        if old is _GONE:
            lines.append(f"+ {path}: {_show(new)}")
        elif new is _GONE:
            lines.append(f"- {path}: {_show(old)}")
        elif isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
            lines.append(f"~ {path}:")
            text = difflib.unified_diff(
                old.splitlines(),
                new.splitlines(),
                f"{names[0]} {path}",
                f"{names[1]} {path}",
                lineterm="",
            )
            lines.extend(f"    {line}" for line in text)
        else:
            lines.append(f"~ {path}: {_show(old)} -> {_show(new)}")
    return lines


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)


def _whole(bundle: dict[str, Any] | None) -> bool:
    """History written before whole bundles were kept holds a one-line summary instead."""
    return bool(bundle) and isinstance(bundle.get("baseModel"), dict)


def known_bundles(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every revision whose whole bundle the release knows: the spec's, the stable's, and each
    history entry's."""
    st = FineTuneReleaseStatus.model_validate(body.get("status") or {})
    found: dict[str, dict[str, Any]] = {}
    for entry in reversed(st.history):
        if _whole(entry.bundle):
            found[entry.revision] = entry.bundle
    if st.stable_revision and _whole(st.stable_bundle):
        found[st.stable_revision] = st.stable_bundle or {}
    spec = FineTuneReleaseSpec.model_validate(body.get("spec") or {})
    found[revision_of(spec.bundle)] = spec.bundle.to_wire()
    return found


def resolve(revisions: dict[str, Any], wanted: str) -> str:
    matches = [r for r in revisions if r.startswith(wanted)]
    if len(matches) != 1:
        which = "matches more than one revision" if matches else "is not a revision it knows"
        raise LookupError(f"{wanted} {which} (known: {', '.join(revisions) or 'none'})")
    return matches[0]


def history_rows(body: dict[str, Any]) -> list[dict[str, str]]:
    """Newest first: each rollout with the bundle fields it changed against the revision that
    was rolled out before it."""
    st = FineTuneReleaseStatus.model_validate(body.get("status") or {})
    entries = st.history
    rows = []
    for index, entry in enumerate(entries):
        before = next(
            (e for e in entries[index + 1 :] if e.revision != entry.revision and _whole(e.bundle)),
            None,
        )
        if not _whole(entry.bundle):
            changed = "(not recorded)"
        elif before is None:
            changed = "(first)"
        else:
            changed = ", ".join(_group(changed_fields(before.bundle, entry.bundle))) or "nothing"
        rows.append(
            {
                "revision": entry.revision,
                "outcome": entry.outcome,
                "finished": entry.finished_at.strftime("%Y-%m-%d %H:%M")
                if entry.finished_at
                else "",
                "startedBy": entry.started_by or "",
                "endedBy": entry.ended_by or "",
                "changed": changed,
                "reason": entry.reason,
            }
        )
    return rows


def _group(paths: list[str]) -> list[str]:
    """Field paths shortened to the field that changed: artifact.digest stays, a schema's
    inner keys become prompt.outputFormat.schema."""
    grouped: list[str] = []
    for path in paths:
        short = ".".join(path.split(".")[:3]).split("[")[0]
        if short not in grouped:
            grouped.append(short)
    return grouped


def apply_plan(live: dict[str, Any] | None, document: dict[str, Any]) -> tuple[bool, list[str]]:
    """What applying `document` would do to the release `live` (None: not there yet): whether
    it starts a rollout or moves traffic, and the lines that say why."""
    release, problems = validate_release(document)
    if release is None:
        raise ValueError("; ".join(str(p) for p in problems))
    name, new = release.metadata.name, revision_of(release.spec.bundle)
    if live is None:
        return True, [f"{name} does not exist: revision {new} would be its first, all traffic"]
    st = FineTuneReleaseStatus.model_validate(live.get("status") or {})
    spec = FineTuneReleaseSpec.model_validate(live.get("spec") or {})
    current = revision_of(spec.bundle)
    outside = [
        p
        for p in _group(changed_fields(spec.to_wire(), release.spec.to_wire()))
        if not p.startswith("bundle")
    ]
    lines = []
    if new == current:
        lines.append(
            f"nothing would roll out: {name} already asks for revision {new} "
            f"(phase {st.phase or 'Pending'})"
        )
        rolls = False
    elif new == st.stable_revision:
        lines.append(f"would end the rollout of {current}: back to stable revision {new}")
        rolls = True
    elif new in {r.revision for r in st.retired}:
        lines.append(f"would roll back to retained revision {new}: no stages, one route write")
        rolls = True
    else:
        lines.append(
            f"would start a new rollout: revision {new} against stable "
            f"{st.stable_revision or '-'}, through every stage"
        )
        rolls = True
    if new != current:
        changed = _group(changed_fields(spec.bundle.to_wire(), release.spec.bundle.to_wire()))
        lines.append(f"bundle fields that change: {', '.join(changed)}")
        lines.extend(
            field_diff(spec.bundle.to_wire(), release.spec.bundle.to_wire(), (current, new))
        )
    if outside:
        lines.append(f"changes outside the bundle (no new revision): {', '.join(outside)}")
    return rolls, lines


# ---- commands ------------------------------------------------------------------------------


def history(args: argparse.Namespace) -> int:
    from .control import Releases

    body = Releases(args).get(args.name)
    rows = history_rows(body)
    if args.output == "json":
        print(json.dumps(rows, indent=2))
        return 0
    table = Table("REVISION", "OUTCOME", "FINISHED", "STARTED BY", "ENDED BY", "CHANGED", "REASON")
    for row in rows:
        table.add_row(*row.values())
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 200
    console.print(table if rows else f"{args.name} has no history yet")
    return 0


def diff(args: argparse.Namespace) -> int:
    from .control import Releases

    releases = Releases(args)
    try:
        if args.filename:
            return _diff_file(releases, args)
        if not args.name or len(args.revisions) != 2:
            print("error: diff NAME REV_A REV_B, or diff -f FILE", file=sys.stderr)
            return EXIT_ERROR
        bundles = known_bundles(releases.get(args.name))
        a, b = (resolve(bundles, r) for r in args.revisions)
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    lines = field_diff(bundles[a], bundles[b], (a, b))
    print("\n".join(lines) if lines else f"{a} and {b} have the same bundle")
    return EXIT_DIFFERENT if lines else EXIT_SAME


def _diff_file(releases, args: argparse.Namespace) -> int:
    documents = [d for d in read_documents([args.filename]) if is_release(d.body)]
    if not documents:
        raise ValueError(f"{args.filename}: no FineTuneRelease in it")
    status = EXIT_SAME
    for document in documents:
        name = document.body.get("metadata", {}).get("name", "")
        namespace = document.body.get("metadata", {}).get("namespace")
        if namespace:
            releases.namespace = namespace
        try:
            live = releases.get(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            live = None
        rolls, lines = apply_plan(live, document.body)
        print(f"{document.label}:")
        print("\n".join(f"  {line}" for line in lines))
        status = EXIT_DIFFERENT if rolls else status
    return status


def add_history(sub: argparse._SubParsersAction) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
        parser.add_argument("--kubeconfig")
        parser.add_argument("--context")

    parser = sub.add_parser("history", help="each rollout, with the bundle fields it changed")
    parser.add_argument("name", help="the FineTuneRelease")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    common(parser)
    parser.set_defaults(func=history)

    parser = sub.add_parser(
        "diff",
        help="the bundle fields two revisions differ in; -f: what applying a file would do",
        description="Exit 0: the same (or nothing would roll out), 1: different (or it would), "
        "2: an error.",
    )
    parser.add_argument("name", nargs="?", help="the FineTuneRelease")
    parser.add_argument("revisions", nargs="*", metavar="REVISION", help="two revisions")
    parser.add_argument("-f", "--filename", help="a release manifest to compare with the cluster")
    common(parser)
    parser.set_defaults(func=diff)
