"""Loading models (transformers, peft; offline, from local directories) and generating with
mixed-adapter batching: requests for different LoRA adapters share one forward pass, each row
choosing its adapter (lora_batch.StackedLora), instead of being served one adapter at a time."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from .lora_batch import StackedLora

log = logging.getLogger(__name__)


def load_tokenizer(directory: str | Path):
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    tokenizer.padding_side = "left"  # rows end together, so one step appends to all
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(directory: str | Path) -> torch.nn.Module:
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True)
    return model.eval()


@dataclass
class Request:
    prompt_ids: list[int]
    adapter: str | None  # None: the model as loaded (base, or merged)
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    ignore_eos: bool = False  # vLLM's extension: always generate max_tokens (benchmarks)
    loop: asyncio.AbstractEventLoop | None = None
    events: asyncio.Queue | None = (
        None  # ("delta", text) ... then ("done", reason, completion_tokens)
    )
    submitted: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None

    def emit(self, *event: Any) -> None:
        assert self.loop is not None and self.events is not None
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class Engine:
    """One worker thread owns the model. It takes requests off a queue, waits `batch_wait`
    seconds for more (up to `max_batch`), and decodes them together. With `mixed=False` a batch
    is split by adapter and each part runs on its own (the one-adapter-at-a-time baseline)."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        max_batch: int = 16,
        batch_wait: float = 0.005,
        mixed: bool = True,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.batch_wait = batch_wait
        self.mixed = mixed
        self.on_batch = on_batch  # (rows, distinct adapters) of each forward batch
        self.stacked = StackedLora()
        self.lock = threading.Lock()  # the model changes (adapters) only between batches
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="engine", daemon=True)
        self._thread.start()

    # ---- adapters -----------------------------------------------------------------------------

    @property
    def adapters(self) -> list[str]:
        if isinstance(self.model, PeftModel):
            return list(self.model.peft_config)
        return []

    def load_adapter(self, name: str, directory: str | Path) -> None:
        with self.lock:
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(str(directory), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(
                    self.model, str(directory), adapter_name=name
                )
            self.model.eval()
            self.stacked.install(self.model)

    def unload_adapter(self, name: str) -> None:
        with self.lock:
            if not isinstance(self.model, PeftModel) or name not in self.model.peft_config:
                raise KeyError(name)
            self.model.delete_adapter(name)
            self.stacked.install(self.model)

    @property
    def context_length(self) -> int:
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", 2048))

    # ---- generation ---------------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        self._queue.put(request)

    def stop(self) -> None:
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.batch_wait
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    item = (
                        self._queue.get(timeout=max(remaining, 0))
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            groups = [batch] if self.mixed else _by_adapter(batch)
            for group in groups:
                if self.on_batch:
                    self.on_batch(len(group), len({r.adapter for r in group}))
                try:
                    with self.lock:
                        self._decode(group)
                except Exception as exc:  # one bad batch must not kill the server
                    log.exception("generation failed")
                    for request in group:
                        request.emit("error", str(exc))

    @torch.inference_mode()
    def _decode(self, batch: list[Request]) -> None:
        if isinstance(self.model, PeftModel):
            self.stacked.rows = self.stacked.adapter_rows([r.adapter for r in batch])
        try:
            self._decode_rows(batch)
        finally:
            self.stacked.rows = None

    def _decode_rows(self, batch: list[Request]) -> None:
        pad = self.tokenizer.pad_token_id
        width = max(len(r.prompt_ids) for r in batch)
        input_ids = torch.tensor(
            [[pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in batch]
        )
        attention = torch.tensor(
            [[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in batch]
        )
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        generators = [_generator(r.seed) for r in batch]
        eos = self.tokenizer.eos_token_id
        generated: list[list[int]] = [[] for _ in batch]
        texts = ["" for _ in batch]
        done = [False] * len(batch)
        cache = None
        for _ in range(max(r.max_tokens for r in batch)):
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention,
                position_ids=positions,
                cache=cache,
                use_cache=True,
            )
            cache = out.cache
            logits = out.logits[:, -1, :].float()
            next_ids = []
            for i, request in enumerate(batch):
                token = _choose(logits[i], request, generators[i])
                next_ids.append(token)
                if done[i]:
                    continue
                if request.first_token_at is None:
                    request.first_token_at = time.monotonic()
                reason = None
                if token == eos and not request.ignore_eos:
                    reason = "stop"
                else:
                    generated[i].append(token)
                    text = self.tokenizer.decode(generated[i], skip_special_tokens=True)
                    cut = _stop_at(text, request.stop)
                    if cut is not None:
                        text, reason = text[:cut], "stop"
                    if reason is None and len(generated[i]) >= request.max_tokens:
                        reason = "length"
                    # Hold back a trailing partial UTF-8 character until it completes.
                    complete = reason is not None or not text.endswith("\ufffd")
                    if complete and len(text) > len(texts[i]) and text.startswith(texts[i]):
                        request.emit("delta", text[len(texts[i]) :])
                        texts[i] = text
                if reason is not None:
                    done[i] = True
                    request.emit("done", reason, len(generated[i]))
            if all(done):
                return
            input_ids = torch.tensor(next_ids).unsqueeze(-1)
            attention = torch.cat(
                [attention, torch.ones(len(batch), 1, dtype=attention.dtype)], dim=-1
            )
            positions = positions[:, -1:] + 1


def _by_adapter(batch: list[Request]) -> list[list[Request]]:
    groups: dict[str | None, list[Request]] = {}
    for request in batch:
        groups.setdefault(request.adapter, []).append(request)
    return list(groups.values())


def _generator(seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def _choose(logits: torch.Tensor, request: Request, generator: torch.Generator | None) -> int:
    if request.temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / request.temperature, dim=-1)
    if request.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < request.top_p
        filtered = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
        probs = filtered / filtered.sum()
    return int(torch.multinomial(probs, 1, generator=generator))


def _stop_at(text: str, stops: list[str]) -> int | None:
    found = [text.find(s) for s in stops if s and s in text]
    return min(found) if found else None
