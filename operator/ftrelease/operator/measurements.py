"""Measurements in flight beside the reconciles: a reconcile never waits for Prometheus."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ftrelease.analysis.evaluate import Measurement
from ftrelease.analysis.measure import from_source
from ftrelease.analysis.source import MetricSource
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.rollout import cycle
from ftrelease.rollout.clock import Window

from .cache import Key


class Measurements:
    """Measurements in flight, one per release, on a bounded pool: a reconcile never waits for
        Prometheus. When one is done its release is reconciled again (`done`) and folds it in, if
        the stage still wants that window. One that is no longer wanted (a rollback, a new stage) is
    replaced by the release's next measurement and its result never folded."""

    def __init__(self, source: MetricSource, workers: int, done: Callable[[Key], None]) -> None:
        self.source = source
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="measure")
        self._flight: dict[Key, tuple[Window, Future]] = {}
        self._lock = threading.Lock()
        self._done = done

    def take(
        self, key: Key, spec: FineTuneReleaseSpec, window: Window
    ) -> tuple[Window, dict[str, Measurement]] | None:
        """The window measured and its measurements once they are in; until then, starts or
        awaits them. The window is the one measured, which ends when the measuring started."""
        with self._lock:
            flight = self._flight.get(key)
            if flight is not None and _same(flight[0], window):
                if not flight[1].done():
                    return None
                del self._flight[key]
                return flight[0], flight[1].result()
            measure = from_source(self.source, at=window.end)
            future = self._pool.submit(cycle.measure_window, spec, window, measure)
            self._flight[key] = (window, future)
        future.add_done_callback(lambda _: self._done(key))
        return None


def _same(a: Window, b: Window) -> bool:
    """The same stage's window from the same start (b may end later: a was asked for first)."""
    return a.start == b.start and a.variables["revision"] == b.variables["revision"]
