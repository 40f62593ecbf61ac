"""vLLM's runtime LoRA API (/v1/load_lora_adapter, /v1/unload_lora_adapter), made safe to leave
on: it can never unload or replace a model the server was started with, loads only LoRA
adapters from under --lora-root whose files match the digest given, checks the name and the
adapter's config before reading any weights, and leaves the server exactly as it was when a
load fails. One load or unload at a time."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from ftrelease.checks.digest import DigestMismatch, verify
from ftrelease.checks.http import ApiError

from .engine import AdapterBusy
from .server import Server

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_RANK = 256


class LoadBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    lora_name: str
    lora_path: str
    digest: str | None = None


class UnloadBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    lora_name: str
    lora_int_id: int | None = None  # vLLM's; not used


def _body(model: type[BaseModel], raw: bytes) -> BaseModel:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = ".".join(str(p) for p in error["loc"]) or None
        raise ApiError(400, f"{param or 'body'}: {error['msg']}", param=param) from None


class RuntimeAdapters:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.loaded: set[str] = set()  # what this API loaded: all it may unload
        self.busy = asyncio.Lock()
        root = server.config.lora_root
        self.root = Path(os.path.realpath(root)) if root else None

    async def load(self, raw: bytes) -> str:
        body = _body(LoadBody, raw)
        assert isinstance(body, LoadBody)
        server, name = self.server, body.lora_name
        if not NAME.match(name):
            raise ApiError(400, "lora_name: 1-64 of A-Z a-z 0-9 . _ -", param="lora_name")
        if name in server.models:
            raise ApiError(
                400, f"{name!r} is served already; it cannot be replaced", param="lora_name"
            )
        if server.engine is None:
            raise ApiError(503, f"not ready: {server.reason}", type_="server_error")
        directory = self._inside_root(body.lora_path)
        _check_lora_config(directory)
        if not body.digest:
            raise ApiError(
                400, "digest (sha256:<hex> of the adapter's files) is required", param="digest"
            )
        async with self.busy:
            try:
                await asyncio.to_thread(verify, "adapter", str(directory), body.digest)
            except DigestMismatch as exc:
                raise ApiError(400, str(exc), param="digest", code="digest_mismatch") from None
            except ValueError as exc:
                raise ApiError(400, str(exc), param="digest") from None
            try:
                await asyncio.to_thread(server.engine.load_adapter, name, directory)
            except Exception as exc:  # the engine put the model back as it was
                raise ApiError(
                    400, f"the adapter cannot be loaded: {exc}", param="lora_path"
                ) from None
            server.models[name] = name
            self.loaded.add(name)
            server.metrics.prime(server.labels(name, name))
        return f"Success: LoRA adapter '{name}' added successfully."

    async def unload(self, raw: bytes) -> str:
        body = _body(UnloadBody, raw)
        assert isinstance(body, UnloadBody)
        name = body.lora_name
        if name in self.server.models and name not in self.loaded:
            raise ApiError(
                400,
                f"{name!r} is the model this server was started with; it cannot be unloaded",
                param="lora_name",
            )
        if name not in self.loaded or self.server.engine is None:
            raise ApiError(
                404, f"adapter {name!r} is not loaded", param="lora_name", code="model_not_found"
            )
        async with self.busy:
            try:
                await asyncio.to_thread(self.server.engine.unload_adapter, name)
            except AdapterBusy as exc:
                raise ApiError(
                    409, f"{exc}; try again when they are done", param="lora_name"
                ) from None
            del self.server.models[name]
            self.loaded.discard(name)
        return f"Success: LoRA adapter '{name}' removed successfully."

    def _inside_root(self, path: str) -> Path:
        if self.root is None:
            raise ApiError(
                400, "no --lora-root is set: runtime adapters cannot be loaded", param="lora_path"
            )
        directory = Path(os.path.realpath(path))
        if not directory.is_relative_to(self.root) or not directory.is_dir():
            raise ApiError(
                400, f"lora_path must be a directory under {self.root}", param="lora_path"
            )
        return directory


def _check_lora_config(directory: Path) -> None:
    """A LoRA adapter's config, read before any weights are."""
    config_file = directory / "adapter_config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ApiError(
            400, f"not a PEFT adapter: {config_file.name}: {exc}", param="lora_path"
        ) from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise ApiError(400, "not a LoRA adapter (adapter_config.json peft_type)", param="lora_path")
    rank = config.get("r")
    if not isinstance(rank, int) or not 0 < rank <= MAX_RANK:
        raise ApiError(400, f"LoRA rank must be 1..{MAX_RANK}, got {rank!r}", param="lora_path")
    if not any(directory.glob("adapter_model.*")):
        raise ApiError(400, "no adapter_model weights in lora_path", param="lora_path")
