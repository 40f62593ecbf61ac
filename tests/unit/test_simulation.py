"""The simulator drives the real planner and judges; its figures follow the scenario."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from ftrelease.api.models import FineTuneRelease
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
    # Rolled back in the 1% stage: far fewer bad answers than a promotion would serve.
    assert broken["bad_served_mean"] < healthy["bad_served_mean"] * 10
    assert broken["seconds_to_decision_mean"] < healthy["seconds_to_decision_mean"]


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
