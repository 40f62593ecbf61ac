"""`kubectl finetune simulate -f RELEASE.yaml`: how the release's analysis would judge synthetic
traffic (see ftrelease.simulation)."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from ftrelease.api.validation import is_release, validate_release
from ftrelease.simulation import TREATMENTS, Scenario, simulate, unsimulated

from .documents import read_documents


def run(args: argparse.Namespace) -> int:
    documents = [d for d in read_documents([args.file]) if is_release(d.body)]
    if not documents:
        print(f"{args.file}: no FineTuneRelease found")
        return 1
    release, problems = validate_release(documents[0].body)
    if release is None:
        for problem in problems:
            print(f"{args.file}: {documents[0].label}: {problem}")
        return 1
    values = dict(v.partition("=")[::2] for v in args.value)
    scenario = Scenario(
        rps=args.rps,
        baseline_rate=args.baseline_rate,
        regression=args.regression,
        added_rate=args.added_rate,
        regressed=tuple(args.metric),
        values=values,
        scrape_gap=args.scrape_gap,
        scrape_interval=args.scrape_interval,
        approve_after=None if args.no_approve else args.approve_after,
    )
    problems = unsimulated(release.spec, scenario)
    if problems:
        for problem in problems:
            print(f"{args.file}: {documents[0].label}: {problem}")
        return 2
    report = simulate(release.spec, scenario, args.runs, args.seed)
    summary = report.summary()
    if args.json:
        print(json.dumps({"scenario": scenario.__dict__, **summary}, indent=2))
        return 0
    healthy = scenario.candidate_rate <= scenario.baseline_rate and "fail" not in values.values()
    table = Table(
        title=f"{documents[0].label}: candidate bad rate {scenario.candidate_rate:.3%} "
        f"vs stable {scenario.baseline_rate:.3%}, {scenario.rps:g} rps, {args.runs} runs"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    label = "false-rollback rate" if healthy else "detection rate"
    table.add_row(label, f"{summary['rollback_rate']:.2%}")
    table.add_row("promoted", f"{summary['promotion_rate']:.2%}")
    table.add_row("paused for a person", f"{summary['paused_rate']:.2%}")
    table.add_row("undecided", f"{summary['undecided_rate']:.2%}")
    table.add_row("bad requests served (mean)", f"{summary['bad_served_mean']:.1f}")
    table.add_row("bad requests served (p95)", f"{summary['bad_served_p95']:.0f}")
    table.add_row("time to decision (mean)", f"{summary['seconds_to_decision_mean'] / 60:.1f} min")
    Console().print(table)
    return 0


def add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="judge synthetic traffic with the release's analysis")
    p.add_argument("-f", "--file", required=True, help="the release YAML")
    p.add_argument("--rps", type=float, default=100.0, help="requests per second, all revisions")
    p.add_argument("--baseline-rate", type=float, default=0.005, help="stable's bad rate")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--regression",
        type=float,
        default=1.0,
        help="candidate's bad rate as a multiple of the baseline (1 = healthy)",
    )
    group.add_argument(
        "--added-rate", type=float, default=0.0, help="candidate's bad rate = baseline + this"
    )
    p.add_argument(
        "--scrape-interval",
        type=float,
        default=15.0,
        help="seconds between Prometheus scrapes: the newest requests count in the next window",
    )
    p.add_argument(
        "--scrape-gap",
        type=float,
        default=0.0,
        help="probability that a measurement fails (Prometheus unreachable: Error)",
    )
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help="a rate metric the candidate is worse on (repeatable; default: every rate metric)",
    )
    p.add_argument(
        "--value",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a metric that is not a rate (custom query, tokens per request): its value each "
        "interval, NUMBER or CANDIDATE:STABLE, or how to treat it: "
        + "|".join(TREATMENTS)
        + " (repeatable; required for threshold metrics, a relative one defaults to unchanged)",
    )
    approvals = p.add_mutually_exclusive_group()
    approvals.add_argument(
        "--approve-after",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="a person approves each manual stage this long after it starts (default at once)",
    )
    approvals.add_argument(
        "--no-approve", action="store_true", help="nobody approves: manual stages wait"
    )
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
