"""Loading models (transformers, peft; offline, from local directories) and generating with
continuous batching: requests join the running batch between decoding steps and leave it as
soon as they finish or their client goes away (batch.py), so a short request never waits for a
long one. Rows for different LoRA adapters share each forward pass, every row choosing its
adapter (lora_batch.StackedLora). A failure is confined to the request that caused it: a row
whose sampling fails ends alone, and a forward pass that fails puts each of its rows back to
be tried alone, resuming where it was."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from .batch import Batch
from .lora_batch import StackedLora
from .sampling import Sampling, choose, showable, stop_at

log = logging.getLogger(__name__)
MAX_RETRIES = 2  # forward passes a request may be caught in the failure of before it fails


def load_tokenizer(directory: str | Path):
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(directory: str | Path) -> torch.nn.Module:
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True)
    return model.eval()


def check_adapter_fits(model: torch.nn.Module, directory: Path) -> None:
    """Every LoRA weight in the adapter names a Linear layer of the model with matching
    sizes: read from the safetensors header, before any weight is loaded."""
    path = directory / "adapter_model.safetensors"
    if not path.exists():
        raise ValueError("the adapter has no adapter_model.safetensors")
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    layers = dict(base.named_modules())
    with safe_open(str(path), framework="pt") as weights:
        for key in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
            module, _, kind = key.removeprefix("base_model.model.").rpartition(".lora_")
            layer = layers.get(module)
            layer = getattr(layer, "base_layer", layer)  # already wrapped by another adapter
            if not isinstance(layer, torch.nn.Linear):
                raise ValueError(f"{key}: the model has no Linear layer {module!r}")
            rows, columns = weights.get_slice(key).get_shape()
            expected = layer.in_features if kind.startswith("A") else layer.out_features
            size = columns if kind.startswith("A") else rows
            if size != expected:
                raise ValueError(f"{key}: size {size} where the model's layer has {expected}")


def _without_tuner_layers(model: torch.nn.Module) -> torch.nn.Module:
    """The model with any LoRA layer that a failed load injected replaced by the layer it
    wraps."""
    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer) and name:
            parent, _, child = name.rpartition(".")
            setattr(
                model.get_submodule(parent) if parent else model, child, module.get_base_layer()
            )
    return model


class QueueFull(Exception):
    """Too many requests wait already; the client should come back later."""


class AdapterBusy(Exception):
    """Requests for the adapter are still being served."""


@dataclass(eq=False)
class Request:
    prompt_ids: list[int]
    adapter: str | None  # None: the model as loaded (base, or merged)
    max_tokens: int
    sampling: Sampling = field(default_factory=Sampling)
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = False  # vLLM's extension: always generate max_tokens (benchmarks)
    loop: asyncio.AbstractEventLoop | None = None
    # (tag, "delta", text) ... then (tag, "done", reason, tokens) or (tag, "error", message)
    events: asyncio.Queue | None = None
    tag: int = 0  # which of a response's choices this is
    submitted: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    cancelled: bool = False  # the client went away: its row leaves at the next step
    # The engine's own state for the request.
    generated: list[int] = field(default_factory=list)
    sent: str = ""
    retries: int = 0
    generator: torch.Generator | None = None

    def emit(self, *event: Any) -> None:
        if self.loop is not None and self.events is not None:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (self.tag, *event))


class Engine:
    """One worker thread owns the model and runs the batch one decoding step at a time; between
    steps it admits waiting requests (up to `max_batch` rows) and drops finished ones. With
    `mixed=False` only one adapter's requests share the batch (the baseline for benchmarks).
    At most `max_queue` requests wait; `submit` raises QueueFull past that."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        max_batch: int = 16,
        batch_wait: float = 0.005,
        mixed: bool = True,
        max_queue: int = 256,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.batch_wait = batch_wait
        self.mixed = mixed
        self.max_queue = max_queue
        self.on_batch = on_batch  # (rows, distinct adapters) of each decoding step
        self.stacked = StackedLora()
        self.lock = threading.Lock()  # the model changes (adapters) only between steps
        self._waiting: deque[Request] = deque()
        self._wake = threading.Condition()
        self._rows: list[Request] = []
        self._batch: Batch | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="engine", daemon=True)
        self._thread.start()

    # ---- adapters -----------------------------------------------------------------------------

    @property
    def adapters(self) -> list[str]:
        if isinstance(self.model, PeftModel):
            return list(self.model.peft_config)
        return []

    def load_adapter(self, name: str, directory: str | Path) -> None:
        """Loads a LoRA adapter under `name`. Its weights' names and shapes are checked against
        the model first; if loading still fails, the model is put back as it was."""
        with self.lock:
            check_adapter_fits(self.model, Path(directory))
            wrapped = not isinstance(self.model, PeftModel)
            try:
                if wrapped:
                    self.model = PeftModel.from_pretrained(
                        self.model, str(directory), adapter_name=name
                    )
                else:
                    self.model.load_adapter(str(directory), adapter_name=name)
                self.model.eval()
                self.stacked.install(self.model)
            except Exception:
                if wrapped:
                    self.model = _without_tuner_layers(self.model)
                elif name in self.model.peft_config:
                    self.model.delete_adapter(name)
                    self.stacked.install(self.model)
                raise

    def unload_adapter(self, name: str) -> None:
        with self.lock:
            if not isinstance(self.model, PeftModel) or name not in self.model.peft_config:
                raise KeyError(name)
            with self._wake:
                busy = sum(r.adapter == name for r in (*self._rows, *self._waiting))
            if busy:
                raise AdapterBusy(f"{busy} requests for {name!r} are being served")
            self.model.delete_adapter(name)
            self.stacked.install(self.model)

    @property
    def context_length(self) -> int:
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", 2048))

    # ---- requests -----------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    def submit(self, request: Request) -> None:
        with self._wake:
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"{len(self._waiting)} requests are waiting already")
            request.generator = request.sampling.generator()
            self._waiting.append(request)
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()

    # ---- the loop -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            new = self._admit()
            if new is None:
                return
            with self.lock, torch.inference_mode():
                if new:
                    self._prefill(new)
                if self._rows:
                    self._decode_step()

    def _admit(self) -> list[Request] | None:
        """The waiting requests that join the batch now; blocks while there is nothing to do.
        None: stopping. A request put back after a failed forward pass runs alone (it joins
        an empty batch and nothing joins it), so a request that fails on its own is found."""
        with self._wake:
            while not self._rows and not self._waiting and not self._stopping:
                self._wake.wait()
            if not self._rows and self.batch_wait:  # idle: let a burst arrive together
                deadline = time.monotonic() + self.batch_wait
                while len(self._waiting) < self.max_batch and not self._stopping:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
            if self._stopping:
                return None
            for request in [r for r in self._waiting if r.cancelled]:
                self._waiting.remove(request)
            if any(r.retries for r in self._rows):
                return []
            if self._waiting and self._waiting[0].retries:
                return [] if self._rows else [self._waiting.popleft()]
            room = self.max_batch - len(self._rows)
            adapter = self._rows[0].adapter if self._rows else None
            new: list[Request] = []
            for request in list(self._waiting):
                if len(new) >= room:
                    break
                if not self.mixed:  # the baseline: one adapter's requests at a time
                    if not (self._rows or new):
                        adapter = request.adapter
                    if request.adapter != adapter:
                        continue
                self._waiting.remove(request)
                new.append(request)
            return new

    def _prefill(self, new: list[Request]) -> None:
        contexts = [r.prompt_ids + r.generated for r in new]
        width = max(len(c) for c in contexts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts])
        attention = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts])
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        try:
            out = self._forward(new, input_ids, attention, positions, cache=None)
        except Exception as exc:
            self._failed(new, exc)
            return
        batch = Batch(out.cache, attention, torch.tensor([len(c) for c in contexts]))
        if self._batch is None or not self._rows:
            self._batch, self._rows = batch, list(new)
        else:
            self._batch.join(batch)
            self._rows.extend(new)
        self._advance(out.logits[:, -1, :], first=len(self._rows) - len(new))

    def _decode_step(self) -> None:
        batch = self._batch
        assert batch is not None
        rows = self._rows
        if self.on_batch:
            self.on_batch(len(rows), len({r.adapter for r in rows}))
        input_ids = torch.tensor([[r.generated[-1]] for r in rows])
        attention = torch.cat([batch.attention, torch.ones(len(rows), 1, dtype=torch.long)], -1)
        try:
            out = self._forward(
                rows, input_ids, attention, batch.positions.unsqueeze(-1), cache=batch.cache
            )
        except Exception as exc:
            self._batch, self._rows = None, []
            self._failed(rows, exc)
            return
        batch.append_step()
        self._advance(out.logits[:, -1, :], first=0)

    def _forward(self, rows, input_ids, attention, positions, cache):
        if isinstance(self.model, PeftModel):
            self.stacked.rows = self.stacked.adapter_rows([r.adapter for r in rows])
        try:
            return self.model(
                input_ids=input_ids,
                attention_mask=attention,
                position_ids=positions,
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        finally:
            self.stacked.rows = None

    def _failed(self, rows: list[Request], exc: Exception) -> None:
        """A forward pass failed: each of its rows is tried again alone, resuming where it was,
        so only one that fails on its own gets the error."""
        log.warning("a forward pass of %d rows failed: %s", len(rows), exc)
        with self._wake:
            for request in reversed(rows):
                if (len(rows) == 1 and request.retries >= MAX_RETRIES) or request.cancelled:
                    request.emit("error", f"generation failed: {exc}")
                    continue
                request.retries += 1
                self._waiting.appendleft(request)

    def _advance(self, logits: torch.Tensor, first: int) -> None:
        """Chooses the next token of rows[first:] (the others wait for the next step), sends
        what may be shown of their text, and drops the rows that are done."""
        keep = list(range(first))
        for index in range(first, len(self._rows)):
            request = self._rows[index]
            if request.cancelled:
                continue
            try:
                token = choose(
                    logits[index - first], request.sampling, request.generated, request.generator
                )
                if self._next_token(request, token):
                    keep.append(index)
            except Exception as exc:  # this row's own failure; the others go on
                log.exception("sampling failed")
                request.emit("error", f"generation failed: {exc}")
        if len(keep) < len(self._rows):
            self._rows = [self._rows[i] for i in keep]
            if self._rows:
                assert self._batch is not None
                self._batch.keep(keep)
            else:
                self._batch = None

    def _next_token(self, request: Request, token: int) -> bool:
        """Takes one chosen token; False once the request is done."""
        if request.first_token_at is None:
            request.first_token_at = time.monotonic()
        if token == self.tokenizer.eos_token_id and not request.ignore_eos:
            text = self.tokenizer.decode(request.generated, skip_special_tokens=True)
            return self._finish(request, text, "stop")
        request.generated.append(token)
        text = self.tokenizer.decode(request.generated, skip_special_tokens=True)
        cut = stop_at(text, request.stop)
        if cut is not None:
            return self._finish(request, text[:cut], "stop")
        if len(request.generated) >= request.max_tokens:
            return self._finish(request, text, "length")
        shown = showable(text, request.stop)
        if len(shown) > len(request.sent) and shown.startswith(request.sent):
            request.emit("delta", shown[len(request.sent) :])
            request.sent = shown
        return True

    def _finish(self, request: Request, text: str, reason: str) -> bool:
        if len(text) > len(request.sent) and text.startswith(request.sent):
            request.emit("delta", text[len(request.sent) :])
        request.emit("done", reason, len(request.generated))
        return False
