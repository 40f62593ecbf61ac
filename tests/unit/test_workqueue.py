"""The operator's work queue: one reconcile per release at a time, none lost, a slow release
never holding up another, and clocks (requeue_after) honoured."""

from __future__ import annotations

import threading
import time

from ftrelease.operator.workqueue import WorkQueue


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: list[tuple[str, float]] = []
        self.running: set[str] = set()
        self.overlaps = 0
        self.gates: dict[str, threading.Event] = {}
        self.requeue: dict[str, float | None] = {}

    def __call__(self, key: str) -> float | None:
        with self.lock:
            if key in self.running:
                self.overlaps += 1
            self.running.add(key)
            self.runs.append((key, time.monotonic()))
        gate = self.gates.get(key)
        if gate is not None:
            gate.wait(10)
        with self.lock:
            self.running.discard(key)
        return self.requeue.pop(key, None)

    def count(self, key: str) -> int:
        with self.lock:
            return sum(1 for k, _ in self.runs if k == key)


def started(work: Recorder, workers: int = 2) -> WorkQueue:
    queue = WorkQueue(work, workers)
    queue.start()
    queue.open()
    return queue


def wait_for(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_key_added_while_it_runs_runs_once_more_after_never_alongside():
    work = Recorder()
    work.gates["a"] = threading.Event()
    queue = started(work)
    queue.add("a")
    wait_for(lambda: work.count("a") == 1)
    for _ in range(5):  # events arriving while it reconciles
        queue.add("a")
    time.sleep(0.2)
    assert work.count("a") == 1 and work.overlaps == 0
    work.gates["a"].set()
    wait_for(lambda: work.count("a") == 2)
    time.sleep(0.2)
    assert work.count("a") == 2, "five events while running: one more reconcile, not five"
    queue.stop()


def test_a_slow_release_does_not_hold_up_another():
    work = Recorder()
    work.gates["slow"] = threading.Event()  # e.g. waiting on a hung Prometheus
    queue = started(work, workers=2)
    queue.add("slow")
    wait_for(lambda: work.count("slow") == 1)
    queue.add("abort-me")
    wait_for(lambda: work.count("abort-me") == 1, timeout=2)
    work.gates["slow"].set()
    queue.stop()


def test_requeue_after_runs_the_key_again_when_due_not_before():
    work = Recorder()
    work.requeue["a"] = 0.5
    queue = started(work)
    queue.add("a")
    wait_for(lambda: work.count("a") == 2)
    first, second = (t for k, t in work.runs if k == "a")
    assert second - first >= 0.5
    queue.stop()


def test_a_sooner_ask_wins_and_a_later_one_does_not_delay_it():
    work = Recorder()
    queue = started(work)
    queue.add("a", delay=30)
    queue.add("a", delay=0.1)
    queue.add("a", delay=60)
    wait_for(lambda: work.count("a") == 1)
    queue.stop()


def test_a_closed_queue_keeps_keys_until_opened():
    work = Recorder()
    queue = WorkQueue(work, 2)
    queue.start()
    queue.add("a")
    time.sleep(0.3)
    assert work.count("a") == 0  # a standby reconciles nothing
    queue.open()
    wait_for(lambda: work.count("a") == 1)
    queue.stop()


def test_a_reconcile_that_raises_is_retried_with_backoff():
    calls = []

    def failing(key: str) -> None:
        calls.append(time.monotonic())
        if len(calls) < 2:
            raise RuntimeError("apiserver said 500")

    queue = WorkQueue(failing, 1)
    queue.start()
    queue.open()
    queue.add("a")
    wait_for(lambda: len(calls) == 2)
    assert calls[1] - calls[0] >= 1.0
    queue.stop()
