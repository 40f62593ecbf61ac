"""The model server's state: its configuration, loading (every artifact's digest verified first),
the models it serves, and the checks that turn a request body into an engine request. ApiError
is the OpenAI-style error those checks raise."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse

from ftrelease.api.bundle import Prompt

from .checks import RefusalDetector
from .digest import DigestMismatch, verify
from .engine import Engine, load_model, load_tokenizer
from .engine import Request as GenerationRequest
from .metrics import ServerMetrics
from .samples import SampleBuffer

log = logging.getLogger(__name__)


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
    sample_rate: float = 0.01
    sample_capacity: int = 256
    redact: list[str] = field(default_factory=list)
    refusal_patterns: list[str] | None = None
    # Fault injection for canary drills and the analysis e2e: this fraction of requests for a
    # served model answer 500 (counted like any error). A real 2x error rate is hard to make.
    fault_error_rate: float = 0.0


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type_,
            param,
            code,
        )

    def response(self) -> JSONResponse:
        return JSONResponse(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "param": self.param,
                    "code": self.code,
                }
            },
            status_code=self.status,
        )


class Server:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self.faults = random.Random()
        self.samples = SampleBuffer(config.sample_rate, config.sample_capacity, config.redact)
        self.refusals = (
            RefusalDetector(config.refusal_patterns)
            if config.refusal_patterns is not None
            else RefusalDetector()
        )
        self.engine: Engine | None = None
        self.ready = False
        self.reason = "loading"
        self.models: dict[str, str | None] = {}  # served model name -> adapter (None: as loaded)
        self.prompt = Prompt()  # the bundle's system prompt and output format
        if config.bundle and Path(config.bundle).exists():
            bundle = json.loads(Path(config.bundle).read_text()).get("bundle", {})
            self.prompt = Prompt.model_validate(bundle.get("prompt") or {})

    # ---- loading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Verifies every artifact's digest before loading anything; a mismatch keeps /ready
        false with the reason."""
        c = self.config
        try:
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
                on_batch=self._count_batch,
            )
            if c.adapter:
                self.engine.load_adapter(c.model_name, c.adapter)
                self.models = {c.model_name: c.model_name, c.base_name: None}
            else:
                self.models = {c.model_name: None}
            for name, adapter in self.models.items():
                self.metrics.prime(self.labels(name, adapter))
            self.ready, self.reason = True, "ready"
            log.info("serving %s", ", ".join(self.models))
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

    def labels(self, model: str, adapter: str | None) -> dict[str, str]:
        name = adapter or ("merged" if self.config.merged else "__base__")
        return {
            "release": self.config.release,
            "revision": self.config.revision,
            "model": model,
            "adapter": name,
        }

    def chat_prompt(self, messages: Any) -> str:
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict)
                and isinstance(m.get("content"), str)
                and m.get("role") in ("system", "user", "assistant")
                for m in messages
            )
        ):
            raise ApiError(
                400,
                "messages must be a non-empty list of {role: system|user|assistant, content: string}",
                param="messages",
            )
        if self.prompt.system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.prompt.system}, *messages]
        tokenizer = self.engine.tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def generation(
        self, body: dict[str, Any], prompt: str, adapter: str | None
    ) -> GenerationRequest:
        max_tokens = body.get("max_tokens", 16)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ApiError(400, "max_tokens must be a positive integer", param="max_tokens")
        if max_tokens > self.config.max_tokens_limit:
            raise ApiError(
                400,
                f"max_tokens {max_tokens} is over this server's limit of "
                f"{self.config.max_tokens_limit}",
                param="max_tokens",
            )
        temperature = body.get("temperature", 1.0)
        top_p = body.get("top_p", 1.0)
        for name, value in (("temperature", temperature), ("top_p", top_p)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ApiError(400, f"{name} must be a number of at least 0", param=name)
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ApiError(400, "stop must be a string or a list of strings", param="stop")
        seed = body.get("seed")
        ids = self.engine.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        limit = self.engine.context_length
        if len(ids) + max_tokens > limit:
            raise ApiError(
                400,
                f"the prompt ({len(ids)} tokens) plus max_tokens ({max_tokens}) is "
                f"longer than the context of {limit} tokens",
                param="messages",
                code="context_length_exceeded",
            )
        return GenerationRequest(
            prompt_ids=ids,
            adapter=adapter,
            max_tokens=max_tokens,
            temperature=float(temperature),
            top_p=float(top_p),
            stop=stop,
            seed=seed if isinstance(seed, int) else None,
            ignore_eos=body.get("ignore_eos") is True,
        )
