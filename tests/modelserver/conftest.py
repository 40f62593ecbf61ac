"""Tiny models and real model-server processes for the builtin server's tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.model_servers import ModelServer
from tests.tiny_models import build_adapter, build_base

ADAPTERS = 8


@dataclass(frozen=True)
class TinyModels:
    root: Path
    base: Path
    adapters: list[Path]  # adapters[i] made with seed i + 1

    def merged(self) -> Path:
        return self.root / "merged"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyModels:
    root = tmp_path_factory.mktemp("models")
    base = build_base(root / "base")
    adapters = [build_adapter(base, root / f"adapter-{i}", seed=i + 1) for i in range(ADAPTERS)]
    return TinyModels(root, base, adapters)


@pytest.fixture(scope="session")
def servers(tmp_path_factory) -> Iterator[Callable[..., ModelServer]]:
    """Starts model servers with the given arguments; all stopped at the end."""
    workdir = tmp_path_factory.mktemp("servers")
    started: list[ModelServer] = []

    def start(*args: str, wait_ready: bool = True) -> ModelServer:
        server = ModelServer(workdir, list(args)).start(wait_ready)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def write_bundle(
    path: Path, output_format: dict | None = None, system: str = "", revision: str | None = None
) -> Path:
    """A revision's bundle.json as the operator mounts it (written for `revision`, if given)."""
    bundle = {"prompt": {"system": system, "outputFormat": output_format or {"type": "text"}}}
    document = {"bundle": bundle} if revision is None else {"revision": revision, "bundle": bundle}
    path.write_text(json.dumps(document))
    return path
