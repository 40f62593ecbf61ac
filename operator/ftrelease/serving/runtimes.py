"""The runtimes, one file each (serving/builtin.py, serving/vllm.py): everything about running
one lives in its file (its pod: containers, arguments, ports, probes, images). Every runtime's
answers are measured by the same code (ftrelease.checks) under the same names, so the analysis
templates and the latency histogram are common to all. Adding a runtime is adding a file and a
line here (and the name to api.spec.Serving.runtime)."""

from __future__ import annotations

from typing import Protocol

from ftrelease.api.bundle import Bundle
from ftrelease.api.spec import Serving

from . import builtin, vllm
from .pod import Pod


class Runtime(Protocol):
    NAME: str
    DEFAULT_IMAGE: str

    def pod(self, serving: Serving, bundle: Bundle, revision: str, release: str) -> Pod:
        """The revision's pod (the bundle's ConfigMap is mounted by serving.objects)."""


RUNTIMES: dict[str, Runtime] = {builtin.NAME: builtin, vllm.NAME: vllm}  # type: ignore[dict-item]
