"""The work queue: which release to reconcile next, as controller-runtime's. A key is added by a
watch event (at once) or by a Decision's requeue_after (when due); a key is never reconciled by
two workers at once, and one added while it is being reconciled runs again right after. A fixed
pool of workers bounds concurrency, so one slow release never delays another."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)

# Runs one key; returns seconds until it wants to run again (None: only on the next event).
Work = Callable[[Hashable], float | None]
ERROR_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds, after reconciles that raised in a row


class WorkQueue:
    def __init__(self, work: Work, workers: int) -> None:
        self._work = work
        self._workers = workers
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Hashable]] = []  # (monotonic time, seq, key)
        self._when: dict[Hashable, float] = {}  # each key's soonest due time
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()  # added while running: run again after
        self._failures: dict[Hashable, int] = {}
        self._seq = 0
        self._open = threading.Event()  # workers take keys only while open (leading)
        self._stopped = False

    def start(self) -> None:
        for i in range(self._workers):
            threading.Thread(target=self._loop, name=f"reconcile-{i}", daemon=True).start()

    def open(self) -> None:
        self._open.set()
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Workers take no more keys until `open` (keys stay queued)."""
        self._open.clear()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def add(self, key: Hashable, delay: float = 0.0) -> None:
        """Reconcile `key` within `delay` seconds (the sooner of this and any earlier ask)."""
        when = time.monotonic() + max(delay, 0.0)
        with self._cond:
            if key in self._running and delay <= 0:
                self._again.add(key)
                return
            if self._when.get(key, float("inf")) <= when:
                return
            self._when[key] = when
            self._seq += 1
            heapq.heappush(self._due, (when, self._seq, key))
            self._cond.notify()

    def _take(self) -> Hashable | None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                if self._open.is_set() and self._due and self._due[0][0] <= now:
                    when, _, key = heapq.heappop(self._due)
                    if self._when.get(key) != when:
                        continue  # superseded by a sooner ask
                    del self._when[key]
                    if key in self._running:
                        self._again.add(key)  # runs again once the running reconcile ends
                        continue
                    self._running.add(key)
                    return key
                wait = self._due[0][0] - now if self._due and self._open.is_set() else 1.0
                self._cond.wait(timeout=min(max(wait, 0.001), 1.0))
            return None

    def _loop(self) -> None:
        while (key := self._take()) is not None:
            try:
                again = self._work(key)
                self._failures.pop(key, None)
            except Exception:
                failures = self._failures.get(key, 0)
                self._failures[key] = failures + 1
                again = ERROR_BACKOFF[min(failures, len(ERROR_BACKOFF) - 1)]
                log.exception("reconcile of %s failed; again in %ss", key, again)
            with self._cond:
                self._running.discard(key)
                rerun = key in self._again
                self._again.discard(key)
            if rerun:
                self.add(key)
            if again is not None:
                self.add(key, again)
