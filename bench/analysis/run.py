"""bench/analysis: the sequential judge against a Flagger-style threshold judge and Wald's SPRT.

One canary stage at `--share` percent of `--rps` requests per second, stable's bad rate
`--baseline`, analysis every `--interval` seconds, for at most `--hours` (the stage's length; a
run that is not rolled back by then is promoted). The same seeded runs feed every judge:

- sequential: ftrelease.analysis.judges (the code the operator runs), candidate against
  stable counts per interval, alpha `--alpha`, margin `--margin`.
- threshold, the Flagger way: each interval the candidate's success rate is checked against a
  minimum; the canary rolls back after `T` failed checks (Flagger's `threshold`). Every
  (minimum, T) of a grid is tried; per regression the one serving the fewest bad requests among
  those whose false-rollback rate on the healthy runs is within `--frr-budget` is reported
  (tuned on the very runs it is scored on: the most favourable tuning it could get).
- SPRT oracle: Wald's one-sided sequential probability ratio test on the candidate's counts,
  knowing the true baseline and regressed rates, with the same alpha: the lower limit.

Prints a table and the ratios, writes results.json and a PNG of false-rollback rate against
bad requests served (one curve per judge, over alpha or the threshold grid)."""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ftrelease.analysis.judges import Counts, Evidence, sequential_update

HERE = Path(__file__).resolve().parent
ALPHAS = (0.001, 0.003, 0.01, 0.03, 0.1)  # the sequential and SPRT curves of the plot
MIN_SUCCESS = (0.90, 0.925, 0.95, 0.96, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995)
FAILED_CHECKS = tuple(range(1, 11))


@dataclass
class Runs:
    """Per run and interval: candidate requests and bad ones, stable requests and bad ones."""

    n_c: np.ndarray
    x: np.ndarray
    n_b: np.ndarray
    y: np.ndarray

    def bad_served(self, decided: np.ndarray) -> np.ndarray:
        """The candidate's bad answers up to the decision (all of them when never decided)."""
        intervals = self.x.shape[1]
        upto = np.where(decided < 0, intervals, decided + 1)
        mask = np.arange(intervals)[None, :] < upto[:, None]
        return (self.x * mask).sum(axis=1)


def simulate(args: argparse.Namespace, rate: float, seed: int) -> Runs:
    rng = np.random.default_rng(seed)
    intervals = int(args.hours * 3600 / args.interval)
    shape = (args.runs, intervals)
    arrivals = rng.poisson(args.rps * args.interval, size=shape)
    n_c = rng.binomial(arrivals, args.share / 100)
    n_b = arrivals - n_c
    return Runs(n_c, rng.binomial(n_c, rate), n_b, rng.binomial(n_b, args.baseline))


def first_crossing(paths: np.ndarray, bound: float) -> np.ndarray:
    """Index of the first interval where a path reaches `bound`; -1 when it never does."""
    hit = paths >= bound
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


def sequential_paths(runs: Runs, margin: float, stop_at: float) -> np.ndarray:
    """log E after each interval, per run (the operator's judge; kept flat once past stop_at)."""
    paths = np.full(runs.x.shape, -np.inf)
    for r in range(runs.x.shape[0]):
        evidence = Evidence()
        for i in range(runs.x.shape[1]):
            evidence = sequential_update(
                evidence,
                Counts(float(runs.x[r, i]), float(runs.n_c[r, i])),
                Counts(float(runs.y[r, i]), float(runs.n_b[r, i])),
                margin,
            )
            paths[r, i] = evidence.log_e
            if evidence.log_e >= stop_at:
                paths[r, i:] = evidence.log_e
                break
    return paths


def sprt_paths(runs: Runs, p0: float, p1: float) -> np.ndarray:
    step = runs.x * math.log(p1 / p0) + (runs.n_c - runs.x) * math.log((1 - p1) / (1 - p0))
    return np.cumsum(step, axis=1)


def threshold_decisions(runs: Runs) -> dict[tuple[float, int], np.ndarray]:
    """Flagger: a check fails when the interval's success rate is under the minimum (an
    interval without candidate requests passes); rollback at the T-th failed check."""
    success = np.where(runs.n_c > 0, 1 - runs.x / np.maximum(runs.n_c, 1), 1.0)
    decided = {}
    for minimum in MIN_SUCCESS:
        failed = np.cumsum(success < minimum, axis=1)
        for checks in FAILED_CHECKS:
            decided[(minimum, checks)] = first_crossing(failed, checks)
    return decided


def rollback_rate(decided: np.ndarray) -> float:
    return float((decided >= 0).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--rps", type=float, default=100.0)
    p.add_argument("--share", type=float, default=1.0, help="the stage's weight, percent")
    p.add_argument("--baseline", type=float, default=0.005)
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument("--hours", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--margin", type=float, default=0.0)
    p.add_argument("--frr-budget", type=float, default=0.01)
    p.add_argument("--regressions", default="2,5")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()
    started = time.monotonic()
    stop_at = math.log(1 / min(ALPHAS))

    healthy = simulate(args, args.baseline, args.seed)
    seq_healthy = sequential_paths(healthy, args.margin, stop_at)
    threshold_healthy = threshold_decisions(healthy)
    frr = {
        "sequential": rollback_rate(first_crossing(seq_healthy, math.log(1 / args.alpha))),
        "threshold": {k: rollback_rate(v) for k, v in threshold_healthy.items()},
    }
    within = [k for k, v in frr["threshold"].items() if v <= args.frr_budget]

    rows, curves = [], {}
    for factor in (float(f) for f in args.regressions.split(",")):
        rate = args.baseline * factor
        runs = simulate(args, rate, args.seed + int(factor * 1000))
        seq = sequential_paths(runs, args.margin, stop_at)
        seq_decided = first_crossing(seq, math.log(1 / args.alpha))
        sprt = sprt_paths(runs, args.baseline, rate)
        sprt_decided = first_crossing(sprt, math.log(1 / args.alpha))
        sprt_healthy = sprt_paths(healthy, args.baseline, rate)
        sprt_frr = rollback_rate(first_crossing(sprt_healthy, math.log(1 / args.alpha)))
        threshold = threshold_decisions(runs)
        bad = {k: float(runs.bad_served(v).mean()) for k, v in threshold.items()}
        best = min(within, key=lambda k: bad[k])
        judges = {
            "sequential": (seq_decided, frr["sequential"], f"alpha {args.alpha}"),
            "threshold": (
                threshold[best],
                frr["threshold"][best],
                f"success >= {best[0]:.1%}, rollback at {best[1]} failed checks",
            ),
            "sprt": (sprt_decided, sprt_frr, f"alpha {args.alpha}, knows both rates"),
        }
        row = {"regression": factor}
        for name, (decided, false_rate, config) in judges.items():
            served = runs.bad_served(decided)
            minutes = (decided[decided >= 0] + 1) * args.interval / 60
            row[name] = {
                "config": config,
                "false_rollback_rate": false_rate,
                "detection_rate": rollback_rate(decided),
                "bad_served_mean": float(served.mean()),
                "bad_served_p95": float(np.percentile(served, 95)),
                "minutes_to_rollback_mean": float(minutes.mean()) if minutes.size else None,
            }
        rows.append(row)
        curves[factor] = {
            "sequential": [
                (
                    rollback_rate(first_crossing(seq_healthy, math.log(1 / a))),
                    float(runs.bad_served(first_crossing(seq, math.log(1 / a))).mean()),
                )
                for a in ALPHAS
            ],
            "sprt": [
                (
                    rollback_rate(first_crossing(sprt_healthy, math.log(1 / a))),
                    float(runs.bad_served(first_crossing(sprt, math.log(1 / a))).mean()),
                )
                for a in ALPHAS
            ],
            "threshold": _frontier([(frr["threshold"][k], bad[k]) for k in threshold]),
        }

    report(args, frr, rows, time.monotonic() - started)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2)
    )
    plot(args, curves, args.out / "frr_vs_bad_served.png")


def _frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The best bad-served figure at each false-rollback rate or less."""
    frontier, best = [], math.inf
    for frr, bad in sorted(points):
        if bad < best:
            best = bad
            frontier.append((frr, bad))
    return frontier


def report(args: argparse.Namespace, frr: dict, rows: list[dict], seconds: float) -> None:
    print(
        f"{args.runs} runs per scenario, {args.share:g}% of {args.rps:g} rps, baseline "
        f"{args.baseline:.2%}, {args.interval:g}s intervals, stage of {args.hours:g}h "
        f"({seconds:.0f}s)"
    )
    print(f"false-rollback rate, no regression: sequential {frr['sequential']:.2%}")
    print()
    print(
        "| regression | judge | configuration | false rollbacks | detected | bad served "
        "(mean) | bad served (p95) | minutes to rollback |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        for name in ("sequential", "threshold", "sprt"):
            r = row[name]
            minutes = r["minutes_to_rollback_mean"]
            print(
                f"| {row['regression']:g}x | {name} | {r['config']} | "
                f"{r['false_rollback_rate']:.2%} | {r['detection_rate']:.1%} | "
                f"{r['bad_served_mean']:.1f} | {r['bad_served_p95']:.0f} | "
                f"{'-' if minutes is None else f'{minutes:.1f}'} |"
            )
    print()
    for row in rows:
        seq = row["sequential"]["bad_served_mean"]
        print(
            f"{row['regression']:g}x: threshold / sequential bad served = "
            f"{row['threshold']['bad_served_mean'] / seq:.2f}x (goal >= 3x); "
            f"sequential / SPRT = {seq / row['sprt']['bad_served_mean']:.2f}x (goal <= 2x)"
        )


def plot(args: argparse.Namespace, curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.5), squeeze=False)
    for ax, (factor, lines) in zip(axes[0], curves.items(), strict=True):
        for name, style in (("sequential", "o-"), ("threshold", "s--"), ("sprt", "^:")):
            points = sorted(lines[name])
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=name)
        ax.axvline(args.frr_budget, color="grey", linewidth=0.8)
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlim(left=0, right=1.05)
        ax.set_yscale("log")
        ax.set_xlabel("false-rollback rate (healthy candidate)")
        ax.set_ylabel("bad requests served before rollback (mean)")
        ax.set_title(f"{factor:g}x regression, {args.share:g}% of {args.rps:g} rps")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
