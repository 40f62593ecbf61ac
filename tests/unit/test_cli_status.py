"""What `kubectl finetune status` shows for a stage: the time it has left, and each metric's
evidence against the bound that decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ftrelease.cli.status import evidence_bound, list_view, release_view, stage_line
from rich.console import Console

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def body(started_ago: float | None, **status) -> dict:
    stage = {"index": 1, "name": "canary-10", "weight": 10}
    if started_ago is not None:
        stage["startedAt"] = (NOW - timedelta(seconds=started_ago)).isoformat()
    return {
        "metadata": {"name": "bot", "namespace": "ml"},
        "spec": {
            "strategy": {
                "stages": [
                    {"name": "shadow", "mirror": 100},
                    {"name": "canary-10", "weight": 10, "duration": "5m"},
                ],
                "analysis": {"alpha": 0.01},
            }
        },
        "status": {"phase": "Progressing", "stage": stage, **status},
    }


def text(renderable) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_the_stage_says_how_long_it_has_left():
    assert stage_line(body(75), NOW) == "stage 1: canary-10, weight 10%, 3m45s of 5m left"
    assert stage_line(body(400), NOW) == "stage 1: canary-10, weight 10%, 0s of 5m left"
    assert "not started (route moving)" in stage_line(body(None), NOW)


def test_each_metric_shows_its_evidence_against_the_bound():
    assert evidence_bound(body(1)) == 100
    analysis = [
        {
            "metric": "errors",
            "outcome": "NoData",
            "value": 0.02,
            "stableValue": 0.01,
            "evidence": 12.5,
            "samples": 300,
        }
    ]
    shown = text(release_view(body(75, analysis=analysis), NOW))
    assert "12.5 of 100" in shown and "3m45s of 5m left" in shown


def test_the_list_has_a_row_per_release():
    other = body(10)
    other["metadata"] = {"name": "classifier", "namespace": "ops"}
    shown = text(list_view([body(75), other], all_namespaces=True))
    rows = [line for line in shown.splitlines() if "Progressing" in line]
    assert len(rows) == 2
    assert "ml" in rows[0] and "bot" in rows[0] and "10%" in rows[0]
    assert "ops" in rows[1] and "classifier" in rows[1]


def test_a_failing_webhook_says_why_and_how_much_waits_and_a_healthy_one_says_nothing():
    notice = {"time": NOW.isoformat(), "type": "Normal", "reason": "StageStarted", "message": "m"}
    notifications = {
        "sequence": 7,
        "pending": [{**notice, "sequence": n} for n in (5, 6, 7)],
        "webhooks": {
            "oncall": {
                "delivered": 4,
                "error": "ConnectError: connection refused",
                "failingSince": NOW.isoformat(),
            },
            "chat": {"delivered": 7},
        },
    }
    shown = text(release_view(body(75, notifications=notifications), NOW))
    assert "webhook oncall failing since 2026-12-01T12:00:00+00:00: ConnectError" in shown
    assert "(3 notifications waiting)" in shown and "chat" not in shown


def test_a_rollback_by_analysis_points_to_its_failures():
    entry = {"revision": "c21b8e0f44", "outcome": "RolledBack", "reason": "format: ..."}
    by_analysis = text(release_view(body(None, history=[{**entry, "endedBy": "analysis"}]), NOW))
    assert "rolled c21b8e0f44 back on: kubectl finetune failures bot" in by_analysis
    by_person = text(release_view(body(None, history=[{**entry, "endedBy": "alice"}]), NOW))
    assert "kubectl finetune failures" not in by_person
