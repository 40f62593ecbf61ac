"""The model server's state: its configuration, loading (every artifact's digest verified first),
the models it serves, and the checks that turn a request body into an engine request. ApiError
is the OpenAI-style error those checks raise."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftrelease.api.bundle import Prompt
from ftrelease.checks.answers import AnswerChecks
from ftrelease.checks.bundle import BundleProblem, lead_with, read_bundle_prompt
from ftrelease.checks.digest import DigestMismatch, verify
from ftrelease.checks.http import ApiError
from ftrelease.checks.metrics import ServerMetrics
from ftrelease.checks.output import RefusalDetector
from ftrelease.checks.samples import SampleBuffer

from .engine import Engine, load_model, load_tokenizer
from .engine import Request as GenerationRequest
from .requests import ChatBody, CompletionBody
from .sampling import Sampling

log = logging.getLogger(__name__)
MAX_CHOICES = 16  # choices per response: n x prompts


@dataclass
class ServerConfig:
    model_name: str
    base: str | None = None
    adapter: str | None = None
    adapter_digest: str | None = None
    merged: str | None = None
    merged_digest: str | None = None
    base_name: str = "base"
    release: str = ""
    revision: str = ""
    bundle: str | None = None  # the revision's bundle.json (system prompt, output format)
    max_batch: int = 16
    batch_wait_ms: float = 5.0
    mixed_batching: bool = True
    max_tokens_limit: int = 1024
    max_body_bytes: int = 1 << 20
    max_queue: int = 256  # requests waiting for the batch; past it, 429 with Retry-After
    admin_port: int | None = None  # review samples, apart from the serving port
    health_when_loaded: bool = False  # /health answers 503 until loaded, as vLLM's does
    enable_runtime_lora: bool = False  # vLLM's runtime LoRA API (load/unload); off by default
    lora_root: str | None = None  # the only directory runtime adapters may be loaded from
    sample_rate: float = 0.01
    sample_capacity: int = 256
    redact: list[str] = field(default_factory=list)
    refusal_patterns: list[str] | None = None
    # Fault injection for canary drills and the analysis e2e: this fraction of requests for a
    # served model answer 500 (counted like any error). A real 2x error rate is hard to make.
    fault_error_rate: float = 0.0


class Server:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self.faults = random.Random()
        self.samples = SampleBuffer(config.sample_rate, config.sample_capacity, config.redact)
        refusals = (
            RefusalDetector(config.refusal_patterns)
            if config.refusal_patterns is not None
            else RefusalDetector()
        )
        self.checks = AnswerChecks(Prompt(), refusals, self.metrics)
        self.engine: Engine | None = None
        self.ready = False
        self.reason = "loading"
        self.models: dict[str, str | None] = {}  # served model name -> adapter (None: as loaded)

    # ---- loading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Verifies every artifact's digest before loading anything; a mismatch keeps /ready
        false with the reason."""
        c = self.config
        try:
            if c.bundle:
                self.checks.prompt = read_bundle_prompt(Path(c.bundle), c.revision)
            if c.merged:
                verify("merged model", c.merged, c.merged_digest)
                model_dir = c.merged
            elif c.base:
                if c.adapter:
                    verify("adapter", c.adapter, c.adapter_digest)
                model_dir = c.base
            else:
                raise ValueError("give --base (with or without --adapter) or --merged")
            tokenizer = load_tokenizer(model_dir)
            model = load_model(model_dir)
            self.engine = Engine(
                model,
                tokenizer,
                max_batch=c.max_batch,
                batch_wait=c.batch_wait_ms / 1000,
                mixed=c.mixed_batching,
                max_queue=c.max_queue,
                on_batch=self._count_batch,
            )
            self.metrics.queue_depth.set_function(lambda: self.engine.queue_depth)
            if c.adapter:
                self.engine.load_adapter(c.model_name, c.adapter)
                self.models = {c.model_name: c.model_name, c.base_name: None}
            else:
                self.models = {c.model_name: None}
            for name, adapter in self.models.items():
                self.metrics.prime(self.labels(name, adapter))
            self.ready, self.reason = True, "ready"
            log.info("serving %s", ", ".join(self.models))
        except BundleProblem as exc:
            self.reason = f"bundle: {exc}"
            log.error("refusing to serve: %s", self.reason)
        except DigestMismatch as exc:
            self.reason = f"digest mismatch: {exc}"
            log.error("refusing to load: %s", self.reason)
        except Exception as exc:
            self.reason = f"load failed: {exc}"
            log.exception("load failed")

    def _count_batch(self, rows: int, adapters: int) -> None:
        self.metrics.batch_rows.observe(rows)
        self.metrics.batch_adapters.observe(adapters)

    # ---- requests -----------------------------------------------------------------------------

    def resolve(self, model: Any) -> str | None:
        if not self.ready or self.engine is None:
            raise ApiError(503, f"not ready: {self.reason}", type_="server_error", code="not_ready")
        if not isinstance(model, str) or model not in self.models:
            raise ApiError(
                404,
                f"model {model!r} does not exist; served: {', '.join(self.models)}",
                param="model",
                code="model_not_found",
            )
        return self.models[model]

    def unresolved_labels(self) -> dict[str, str]:
        """For a request refused before its model is known."""
        return {
            "release": self.config.release,
            "revision": self.config.revision,
            "model": "",
            "adapter": "",
        }

    def labels(self, model: str, adapter: str | None) -> dict[str, str]:
        name = adapter or ("merged" if self.config.merged else "__base__")
        return {
            "release": self.config.release,
            "revision": self.config.revision,
            "model": model,
            "adapter": name,
        }

    def chat_prompt(self, body: ChatBody) -> str:
        """The conversation, led by the bundle's system prompt, as the model's chat template
        renders it."""
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        turns = lead_with(self.checks.prompt.system, messages)
        tokenizer = self.engine.tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
        return "".join(f"{t['role']}: {t['content']}\n" for t in turns) + "assistant:"

    def generations(self, body: ChatBody | CompletionBody, adapter: str | None) -> list[Choice]:
        """One engine request per choice: n for each prompt."""
        engine = self.engine
        assert engine is not None
        vocabulary = len(engine.tokenizer)
        if any(token >= vocabulary for token in body.bias()):
            raise ApiError(400, f"logit_bias: token ids are below {vocabulary}", param="logit_bias")
        if isinstance(body, ChatBody):
            # The template writes the special tokens itself: adding them again would double
            # the BOS token.
            prompt = self.chat_prompt(body)
            prompts = [engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]]
        else:
            prompts = [
                p if isinstance(p, list) else engine.tokenizer(p)["input_ids"]
                for p in body.prompts()
            ]
            if any(t >= vocabulary for p in prompts for t in p):
                raise ApiError(400, f"prompt: token ids are below {vocabulary}", param="prompt")
        if len(prompts) * body.n > MAX_CHOICES:
            raise ApiError(400, f"n x prompts is at most {MAX_CHOICES}", param="n")
        choices = []
        for ids in prompts:
            max_tokens = self._max_tokens(body.limit(), len(ids))
            for i in range(body.n):
                seed = None if body.seed is None else (body.seed + i) % 2**64
                sampling = Sampling(
                    temperature=body.temperature,
                    top_p=body.top_p,
                    presence_penalty=body.presence_penalty,
                    frequency_penalty=body.frequency_penalty,
                    logit_bias=body.bias(),
                    seed=seed,
                )
                request = GenerationRequest(
                    prompt_ids=ids,
                    adapter=adapter,
                    max_tokens=max_tokens,
                    sampling=sampling,
                    stop=list(body.stop or []),
                    ignore_eos=body.ignore_eos,
                )
                choices.append(Choice(len(choices), request))
        return choices

    def _max_tokens(self, asked: int | None, prompt_tokens: int) -> int:
        """As asked, or (vLLM's default) what the context leaves; never over the server's
        limit."""
        context = self.engine.context_length
        left = context - prompt_tokens
        if left < 1:
            raise ApiError(
                400,
                f"the prompt ({prompt_tokens} tokens) fills the context of {context} tokens",
                param="messages",
                code="context_length_exceeded",
            )
        limit = self.config.max_tokens_limit
        if asked is None:
            return min(left, limit)
        if asked > limit:
            raise ApiError(
                400,
                f"max_tokens {asked} is over this server's limit of {limit}",
                param="max_tokens",
            )
        if asked > left:
            raise ApiError(
                400,
                f"the prompt ({prompt_tokens} tokens) plus max_tokens ({asked}) is longer than "
                f"the context of {context} tokens",
                param="max_tokens",
                code="context_length_exceeded",
            )
        return asked


@dataclass
class Choice:
    """One generation of a response: its index among the choices and its engine request."""

    index: int
    request: GenerationRequest
