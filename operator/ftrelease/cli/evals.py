"""kubectl finetune evals NAME: the eval gate's view of the current (or last gated) candidate:
declared against measured scores for it and the stable, the suite and version each was measured
on, the gate's rules and verdict, and the Jobs that measured them. Pure rows from the release;
only the command reads the cluster."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ftrelease.api.revision import revision_of
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import EvalResult, FineTuneReleaseStatus


def declared_scores(body: dict[str, Any], revision: str | None) -> dict[str, float]:
    """A revision's declared scores: from the spec, the stable's bundle, or its history entry."""
    status = FineTuneReleaseStatus.model_validate(body.get("status") or {})
    bundles: list[dict[str, Any]] = []
    try:
        spec = FineTuneReleaseSpec.model_validate(body.get("spec") or {})
        if revision_of(spec.bundle) == revision:
            bundles.append(spec.bundle.to_wire())
    except ValidationError:
        pass
    if revision == status.stable_revision and status.stable_bundle:
        bundles.append(status.stable_bundle)
    bundles += [e.bundle for e in status.history if e.revision == revision]
    return next((dict((b.get("evals") or {}).get("scores") or {}) for b in bundles), {})


def evals_view(body: dict[str, Any]) -> dict[str, Any]:
    """What `evals` shows, as data (-o json prints it)."""
    status = FineTuneReleaseStatus.model_validate(body.get("status") or {})
    gate = status.gate
    if gate is None:
        return {"gate": None, "scores": [], "runs": []}
    candidate, stable = gate.revision, gate.stable_revision
    mine = _measured(status.evals, candidate, gate.suite, gate.version)
    theirs = _measured(status.evals, stable, gate.suite, gate.version) if stable else None
    declared = {candidate: declared_scores(body, candidate)}
    if stable:
        declared[stable] = declared_scores(body, stable)
    names = sorted(
        {c.score for c in gate.checks} | set(mine.scores if mine else {}) | set(declared[candidate])
    )
    rows = []
    for name in names:
        checks = [c for c in gate.checks if c.score == name]
        rows.append(
            {
                "score": name,
                "candidateDeclared": declared[candidate].get(name),
                "candidateMeasured": mine.scores.get(name) if mine else None,
                "stableDeclared": declared.get(stable or "", {}).get(name),
                "stableMeasured": theirs.scores.get(name) if theirs else None,
                "rules": [{"rule": c.rule, "limit": c.limit, "passed": c.passed} for c in checks],
            }
        )
    runs = [
        r.to_wire()
        for r in status.evals
        if r.revision in (candidate, stable) and (r.suite, r.version) == (gate.suite, gate.version)
    ]
    return {"gate": gate.to_wire(), "scores": rows, "runs": runs}


def _measured(
    results: list[EvalResult], revision: str | None, suite: str, version: str
) -> EvalResult | None:
    return next(
        (
            r
            for r in results
            if r.revision == revision
            and (r.suite, r.version) == (suite, version)
            and r.state == "Succeeded"
        ),
        None,
    )


def verdict_line(gate: dict[str, Any]) -> str:
    word = {None: "MEASURING", True: "PASSED", False: "GATED"}[gate.get("passed")]
    comparable = {True: "comparable", False: "NOT comparable", None: "no comparison"}[
        gate.get("comparable")
    ]
    return (
        f"{word}: revision {gate['revision']} ({gate['source']} on {gate['suite']} "
        f"{gate['version']}; against stable {gate.get('stableRevision') or '-'}: {comparable})"
        f"\n  {gate.get('reason') or ''}"
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def evals(args: argparse.Namespace) -> int:
    from .control import Releases

    view = evals_view(Releases(args).get(args.name))
    if args.output == "json":
        print(json.dumps(view, indent=2))
        return 0
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 200
    gate = view["gate"]
    if gate is None:
        console.print(f"{args.name}: no eval gate has judged a candidate yet")
        return 0
    console.print(verdict_line(gate))
    table = Table(
        "SCORE",
        "CANDIDATE DECLARED",
        "CANDIDATE MEASURED",
        "STABLE DECLARED",
        "STABLE MEASURED",
        "GATE",
    )
    for row in view["scores"]:
        rules = ", ".join(
            f"{r['rule']} {_number(r['limit'])}: {'pass' if r['passed'] else 'FAIL'}"
            for r in row["rules"]
        )
        table.add_row(
            row["score"],
            _number(row["candidateDeclared"]),
            _number(row["candidateMeasured"]),
            _number(row["stableDeclared"]),
            _number(row["stableMeasured"]),
            rules or "-",
        )
    console.print(table)
    for mismatch in gate.get("mismatches") or []:
        console.print(f"declared score contradicted: {mismatch}")
    for run in view["runs"]:
        console.print(
            f"job {run['job']}: revision {run['revision']} {run['state']}"
            + (f": {run['message']}" if run.get("message") else "")
        )
    return 0


def add_evals(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evals", help="the eval gate: declared against measured scores, candidate and stable"
    )
    parser.add_argument("name", help="the FineTuneRelease")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context")
    parser.set_defaults(func=evals)
