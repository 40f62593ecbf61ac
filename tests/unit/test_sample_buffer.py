"""Review samples: a random share of answers, and every flagged one, each buffer bounded."""

from __future__ import annotations

from ftrelease.checks.samples import SampleBuffer


def offer(buffer: SampleBuffer, i: int, flags: list[str] | None = None) -> bool:
    return buffer.offer("m", "a", {"prompt": f"p{i}"}, f"answer {i}", flags)


def test_flagged_answers_are_kept_even_when_the_rate_keeps_none():
    buffer = SampleBuffer(rate=0.0, capacity=3, redact=[], seed=1)
    kept = [offer(buffer, i, ["format_invalid"] if i % 2 else None) for i in range(10)]
    assert kept == [bool(i % 2) for i in range(10)]
    assert buffer.items() == []
    flagged = buffer.items(flagged=True)
    assert [s["prompt"] for s in flagged] == ["p5", "p7", "p9"], "the newest, bounded"
    assert {tuple(s["flags"]) for s in flagged} == {("format_invalid",)}
    assert [s["prompt"] for s in buffer.items(limit=1, flagged=True)] == ["p9"]
    assert buffer.clear() == 3 and buffer.items(flagged=True) == []


def test_a_sampled_flagged_answer_is_in_both_buffers_and_unflagged_ones_only_sampled():
    buffer = SampleBuffer(rate=1.0, capacity=10, redact=[r"\d{4}"], seed=1)
    offer(buffer, 1234, ["refusal"])
    offer(buffer, 2, None)
    assert [s["flags"] for s in buffer.items()] == [["refusal"], []]
    [flagged] = buffer.items(flagged=True)
    assert flagged["prompt"] == "p[REDACTED]" and flagged["response"] == "answer [REDACTED]"
