"""Webhooks, beside the reconciles: the notifier sends each release's outbox (status.notifications,
filled by rollout.outbox) and the confirm webhooks are asked about a stage (rollout.confirm).
Neither ever holds up a reconcile: they run on their own threads, and a reconcile only reads
what they have found.

Delivery is at least once and in order, per webhook: notices go out oldest first, one at a
time; the first failure stops that webhook's turn and it is tried again after a backoff (1 s,
doubling, at most MAX_BACKOFF). What a webhook acknowledged is written to status, so a restarted
operator (or a new leader) goes on from there; a notice sent but not yet recorded may be sent
again, with the same id."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from ftrelease.api.durations import parse_duration
from ftrelease.api.notifications import ConfirmWebhook, UrlSource, Webhook
from ftrelease.api.ownership import ReleaseRef
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus, WebhookState
from ftrelease.rollout import outbox
from ftrelease.rollout.confirm import ConfirmRequest
from ftrelease.rollout.types import Answer, Confirmations

from . import metrics
from .cache import Cache, Key
from .kube import Kube
from .webhook_bodies import BODIES, confirm_json

log = logging.getLogger(__name__)
MAX_BACKOFF = 30.0  # seconds between attempts at a webhook that keeps failing
RECORD_RETRY = 5.0  # seconds: what a webhook acknowledged, when status could not be written
ANSWER_LIMIT = 200  # characters of a refusal's body kept in status


def _ref(body: dict[str, Any]) -> ReleaseRef:
    meta = body["metadata"]
    return ReleaseRef(meta["name"], meta["namespace"], meta["uid"])


def _url(kube: Kube, namespace: str, source: UrlSource) -> str:
    ref = source.secret_key_ref
    return kube.secret_value(namespace, ref.name, ref.key).strip()


def _failure(exc: Exception) -> str:
    """One line for status: the HTTP status and the start of the answer, or the error."""
    if isinstance(exc, httpx.HTTPStatusError):
        text = exc.response.text.strip().replace("\n", " ")[:ANSWER_LIMIT]
        return f"HTTP {exc.response.status_code}" + (f": {text}" if text else "")
    return f"{type(exc).__name__}: {exc}"[:ANSWER_LIMIT] if str(exc) else type(exc).__name__


_Turn = tuple[Key, str]  # a release and one of its webhooks


@dataclass
class _Backoff:
    failures: int = 0
    next_at: float = 0.0


class Notifier:
    """Sends the outboxes: each webhook of each release on its own turn, on a few threads, so
    a webhook that hangs holds up no other."""

    def __init__(
        self, kube: Kube, cache: Cache, leading: Callable[[], bool], workers: int = 4
    ) -> None:
        self.kube, self.cache, self.leading = kube, cache, leading
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify")
        self._lock = threading.Lock()
        self._busy: set[_Turn] = set()
        self._again: set[_Turn] = set()  # woken while busy: one more turn after this one
        self._backoff: dict[tuple[str, str], _Backoff] = {}  # by (release uid, webhook)
        self._sent: dict[tuple[str, str], int] = {}  # sent, perhaps not yet recorded in status

    def wake(self, key: Key) -> None:
        """Sends what `key`'s outbox holds for its webhooks, unless they are backing off."""
        body = self.cache.release(key) or {}
        hooks = ((body.get("spec") or {}).get("notifications") or {}).get("webhooks") or []
        for hook in hooks:
            self._wake((key, hook.get("name", "")))

    def _wake(self, turn: _Turn) -> None:
        with self._lock:
            if turn in self._busy:
                self._again.add(turn)
                return
            self._busy.add(turn)
        self._pool.submit(self._turn, turn)

    def _turn(self, turn: _Turn) -> None:
        try:
            self.deliver(*turn)
        except Exception:
            log.exception("notifications of %s/%s to %s", *turn[0], turn[1])
        with self._lock:
            self._busy.discard(turn)
            again = turn in self._again
            self._again.discard(turn)
        if again:
            self._wake(turn)

    def deliver(self, key: Key, name: str) -> None:
        body = self.cache.release(key)
        if body is None or not self.leading():
            return
        try:
            spec = FineTuneReleaseSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            return  # the reconciler says why
        hook = next((h for h in spec.notifications.webhooks if h.name == name), None)
        ref = _ref(body)
        backoff = self._backoff.get((ref.uid, name))
        if hook is None or (backoff is not None and backoff.next_at > time.monotonic()):
            return  # gone, or backing off: its timer wakes it
        status = FineTuneReleaseStatus.model_validate(body.get("status") or {})
        self._deliver(ref, status, hook, (key, name))

    def _deliver(
        self, ref: ReleaseRef, status: FineTuneReleaseStatus, hook: Webhook, turn: _Turn
    ) -> None:
        box = status.notifications
        state = (box.webhooks.get(hook.name) if box else None) or WebhookState()
        mark = (ref.uid, hook.name)
        notices = outbox.undelivered(status, hook.name, self._sent.get(mark, 0))
        sent = max(state.delivered, self._sent.get(mark, 0))
        error = None
        if notices:
            try:
                url = _url(self.kube, ref.namespace, hook.url_from)
                timeout = parse_duration(hook.timeout).total_seconds()
                with httpx.Client(timeout=timeout) as client:
                    for notice in notices:
                        if not self.leading():
                            return
                        if hook.wants(notice.reason):
                            response = client.post(
                                url,
                                json=BODIES[hook.format](ref, notice),
                                headers={"Idempotency-Key": f"{ref.uid}/{notice.sequence}"},
                            )
                            response.raise_for_status()
                            metrics.NOTIFICATIONS.labels(ref.namespace, ref.name, "sent").inc()
                        sent = notice.sequence
                        self._sent[mark] = sent
            except Exception as exc:
                error = _failure(exc)
                metrics.NOTIFICATIONS.labels(ref.namespace, ref.name, "failed").inc()
        self._record(ref, hook.name, state, sent, error, turn)
        if error is None:
            self._backoff.pop(mark, None)
            return
        backoff = self._backoff.setdefault(mark, _Backoff())
        backoff.failures += 1
        delay = min(2.0 ** (backoff.failures - 1), MAX_BACKOFF)
        backoff.next_at = time.monotonic() + delay
        log.info("%s/%s: webhook %s: %s; again in %ss", *turn[0], hook.name, error, delay)
        self._later(turn, delay)

    def _later(self, turn: _Turn, delay: float) -> None:
        timer = threading.Timer(delay, self._wake, args=(turn,))
        timer.daemon = True
        timer.start()

    def _record(
        self,
        ref: ReleaseRef,
        hook: str,
        state: WebhookState,
        sent: int,
        error: str | None,
        turn: _Turn,
    ) -> None:
        """Writes what the webhook acknowledged, and whether it fails: only when that changed
        (a failing webhook's retries write nothing more)."""
        failing = error is not None
        if sent == state.delivered and failing == (state.error is not None):
            return
        since = (state.failing_since or datetime.now(UTC)) if failing else None
        new = WebhookState(delivered=sent, error=error, failing_since=since)
        patch = {"notifications": {"webhooks": {hook: new.model_dump(mode="json", by_alias=True)}}}
        try:
            written = self.kube.patch_status(ref, patch, None)
        except Exception as exc:  # kept in memory (_sent), written at the next turn
            log.info("%s/%s: webhook %s not recorded: %s", ref.namespace, ref.name, hook, exc)
            self._later(turn, RECORD_RETRY)
            return
        self.cache.put_release(written, only_newer=True)


class ConfirmAsker:
    """Asks confirm webhooks about a stage, on a few threads; a reconcile takes the answers
    that are in (`take`) and is woken (`done`) when another comes."""

    def __init__(self, kube: Kube, done: Callable[[Key], None], workers: int = 4) -> None:
        self.kube = kube
        self._done = done
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="confirm")
        self._lock = threading.Lock()
        # (release key, candidate, stage index) -> webhook -> (answer, when asked)
        self._answers: dict[tuple[Key, str, int], dict[str, tuple[Answer, float]]] = {}
        self._asking: set[tuple[Key, str, int, str]] = set()

    def take(self, key: Key, body: dict[str, Any], request: ConfirmRequest) -> Confirmations:
        """The answers in about `request`'s stage; asks the webhooks that have none, or whose
        refusal is older than their retry."""
        stage_key = (key, request.candidate, request.stage)
        now = time.monotonic()
        with self._lock:
            for old in [k for k in self._answers if k[0] == key and k != stage_key]:
                del self._answers[old]  # another stage's: never used again
            answers = self._answers.setdefault(stage_key, {})
            for hook in request.hooks:
                asking = (*stage_key, hook.name)
                found = answers.get(hook.name)
                stale = found is None or (
                    not found[0].ok and now - found[1] >= parse_duration(hook.retry).total_seconds()
                )
                if stale and asking not in self._asking:
                    self._asking.add(asking)
                    log.info("%s/%s: asking %s about stage %s", *key, hook.name, request.stage)
                    self._pool.submit(self._ask, key, stage_key, body, hook)
            latest = {name: answer for name, (answer, _) in answers.items()}
        return Confirmations(request.candidate, request.stage, latest)

    def _ask(
        self, key: Key, stage_key: tuple[Key, str, int], body: dict[str, Any], hook: ConfirmWebhook
    ) -> None:
        asked = time.monotonic()
        answer = self.ask(body, hook)
        with self._lock:
            self._asking.discard((*stage_key, hook.name))
            if stage_key in self._answers:
                self._answers[stage_key][hook.name] = (answer, asked)
        log.info("%s/%s: %s answered %s about stage %s", *key, hook.name, answer, stage_key[2])
        self._done(key)

    def ask(self, body: dict[str, Any], hook: ConfirmWebhook) -> Answer:
        ref = _ref(body)
        status = FineTuneReleaseStatus.model_validate(body.get("status") or {})
        stage, candidate = status.stage, status.candidate_revision
        assert stage is not None and candidate is not None
        question = confirm_json(ref, stage, candidate, status.stable_revision, datetime.now(UTC))
        try:
            url = _url(self.kube, ref.namespace, hook.url_from)
            timeout = parse_duration(hook.timeout).total_seconds()
            response = httpx.post(url, json=question, timeout=timeout)
            response.raise_for_status()
        except Exception as exc:
            log.info("%s/%s: confirm webhook %s: %s", ref.namespace, ref.name, hook.name, exc)
            return Answer(False, _failure(exc))
        return Answer(True, f"HTTP {response.status_code}")
