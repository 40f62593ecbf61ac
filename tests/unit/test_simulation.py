"""The simulator runs the operator's cycle on the in-memory world; its figures follow the
scenario, every metric is simulated, and the shipped examples end in a decision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from ftrelease.api.resource import FineTuneRelease
from ftrelease.simulation import Scenario, simulate

from tests.api_cases import load_example

STRATEGY = {
    "stages": [
        {"name": "canary-1", "weight": 1, "duration": "10m"},
        {"name": "canary-10", "weight": 10, "duration": "10m"},
        {"name": "full", "weight": 100},
    ],
    "analysis": {
        "interval": "30s",
        "alpha": 0.01,
        "minSamples": 200,
        "metrics": [{"name": "errors", "template": "error-rate"}],
    },
}


def release() -> dict:
    doc = load_example()
    doc["spec"]["strategy"] = STRATEGY
    return doc


def test_healthy_candidates_are_promoted_and_bad_ones_rolled_back():
    spec = FineTuneRelease.model_validate(release()).spec
    healthy = simulate(spec, Scenario(), runs=15, seed=3).summary()
    assert healthy["promotion_rate"] == 1.0 and healthy["rollback_rate"] == 0.0
    broken = simulate(spec, Scenario(added_rate=0.2), runs=15, seed=3).summary()
    assert broken["rollback_rate"] == 1.0
    # Rolled back in the 1% stage (10 minutes at 1 rps: about 600 candidate requests at a
    # 20.5% bad rate, 123 bad if it ran the whole stage): it never reaches the 10% stage.
    assert broken["bad_served_p95"] < 123
    assert broken["seconds_to_decision_mean"] < 600
    assert healthy["seconds_to_decision_mean"] >= 1200  # both stages ran their full clocks


def test_missing_data_never_promotes():
    spec = FineTuneRelease.model_validate(release()).spec
    report = simulate(spec, Scenario(scrape_gap=1.0), runs=3, seed=1)
    assert report.rate("promoted") == 0.0 and report.rate("rolled-back") == 0.0


def test_cli_prints_json(tmp_path):
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(release()))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftrelease.cli.main",
            "simulate",
            "-f",
            str(path),
            "--runs",
            "5",
            "--regression",
            "40",
            "--scrape-interval",
            "30",
            "--scrape-gap",
            "0.1",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout)
    assert figures["runs"] == 5 and figures["rollback_rate"] == 1.0
    assert figures["scenario"]["scrape_interval"] == 30.0


EXAMPLES = sorted((Path(__file__).parents[2] / "manifests" / "examples").glob("*.yaml"))


def simulate_cli(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ftrelease.cli.main", "simulate", "-f", str(path), *args],
        capture_output=True,
        text=True,
    )


def test_every_shipped_example_simulates_to_a_decision():
    assert len(EXAMPLES) == 3
    for path in EXAMPLES:
        extra = ["--value", "ttft-p99=0.5"] if "support-bot" in path.name else []
        result = simulate_cli(path, "--runs", "3", "--json", *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        figures = json.loads(result.stdout)
        assert figures["undecided_rate"] == 0.0, (path.name, figures)
        assert figures["promotion_rate"] + figures["rollback_rate"] == 1.0, (path.name, figures)


def test_a_custom_query_must_be_given_a_value_and_decides_by_it():
    support_bot = next(p for p in EXAMPLES if "support-bot" in p.name)
    refused = simulate_cli(support_bot, "--runs", "1")
    assert refused.returncode == 2
    assert "metric ttft-p99" in refused.stdout and "--value ttft-p99=" in refused.stdout
    # Over its threshold (max 2 s): every run is rolled back, though every rate is healthy.
    result = simulate_cli(support_bot, "--runs", "2", "--json", "--value", "ttft-p99=3")
    assert json.loads(result.stdout)["rollback_rate"] == 1.0


def test_manual_approval_is_given_or_withheld():
    support_bot = next(p for p in EXAMPLES if "support-bot" in p.name)
    args = ["--runs", "1", "--json", "--value", "ttft-p99=0.5"]
    never = json.loads(simulate_cli(support_bot, *args, "--no-approve").stdout)
    assert never["promotion_rate"] == 0.0 and never["undecided_rate"] == 1.0
    # canary-10 (2h, manual): approved 3h after it starts, an hour past its clock.
    late = json.loads(simulate_cli(support_bot, *args, "--approve-after", "10800").stdout)
    soon = json.loads(simulate_cli(support_bot, *args).stdout)
    assert late["promotion_rate"] == soon["promotion_rate"] == 1.0
    assert late["seconds_to_decision_mean"] >= soon["seconds_to_decision_mean"] + 3000


def test_a_regression_on_a_second_rate_metric_is_caught():
    doc = release()
    doc["spec"]["strategy"]["analysis"]["metrics"].append(
        {"name": "slow", "template": "slow-requests", "latencyBound": "2s", "margin": 0}
    )
    spec = FineTuneRelease.model_validate(doc).spec
    report = simulate(spec, Scenario(added_rate=0.2, regressed=("slow",)), runs=5, seed=2)
    assert report.rate("rolled-back") == 1.0
