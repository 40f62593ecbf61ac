"""`make demo`'s scenario with shorter stages: its own control plane beside the session's, the
pods the operator deploys run by the local kubelet, Prometheus finding them through the
apiserver, requests from the gateway stand-in. The good adapter is promoted on analysis, the one
that breaks the JSON format is rolled back by its format metric."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.serve]


def test_the_demo_promotes_the_good_refresh_and_rolls_back_the_format_breaker(tmp_path):
    from demo.run import main

    workdir = tmp_path / "demo"
    code = main(["--workdir", str(workdir), "--stage-seconds", "10"])
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["v2"]["outcome"] == "Promoted", summary
    assert summary["v3-bad"]["outcome"] == "RolledBack", summary
    reason = summary["v3-bad"]["reason"]
    assert reason.startswith("format: candidate "), reason
    # About 30% of the answers broke the format (6 of the 20 questions); the stable none.
    rate = float(reason.split("candidate ")[1].split("%")[0])
    assert 15 < rate < 50 and "vs stable 0.000%" in reason, reason
    assert code == 0
    assert (workdir / "timeline.png").stat().st_size > 10_000
    # The rollback left its failures for people: the refund answers that are not JSON.
    lines = [
        json.loads(line) for line in (workdir / "failures-v3-bad.jsonl").read_text().splitlines()
    ]
    assert summary["v3-bad"]["failures"] == len(lines) > 0
    assert {line["incident"]["reason"] for line in lines} == {reason}
    flagged = [line["sample"] for line in lines if "format_invalid" in line["sample"]["flags"]]
    assert flagged and all(s["response"] and s["finish_reason"] == "stop" for s in flagged)
    assert any("refund" in s["messages"][-1]["content"].lower() for s in flagged)


def test_on_the_vllm_runtime_the_response_checker_judges_the_same(tmp_path):
    """The demo's scenario with runtime vllm. vLLM cannot run here: the local kubelet runs its
    stand-in (tests/cluster/vllm_stand_in.py: the builtin server without the bundle, so it
    applies no prompt and its own measurements are not scraped) behind the real response
    checker, after the real digest check. The analysis reads only the checker's metrics."""
    from demo.run import main

    workdir = tmp_path / "demo-vllm"
    code = main(["--workdir", str(workdir), "--stage-seconds", "10", "--runtime", "vllm"])
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["v2"]["outcome"] == "Promoted", summary
    assert summary["v3-bad"]["outcome"] == "RolledBack", summary
    reason = summary["v3-bad"]["reason"]
    assert reason.startswith("format: candidate ") and "vs stable 0.000%" in reason, reason
    assert code == 0
