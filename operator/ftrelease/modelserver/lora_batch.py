"""Mixed-adapter LoRA in one pass per layer (the gather-then-bmm idea of Punica's BGMV and
S-LoRA): every loaded adapter's A and B matrices are stacked (ranks padded with zeros, scaling
folded into B, row 0 all zeros for the base model), each batch row picks its adapter by index, and
the low-rank update is two batched matmuls per layer whatever the number of adapters. peft's own
mixed batch path loops over the adapters in the batch, sub-batch by sub-batch, which costs a few
small kernels per adapter per layer.

Only plain LoRA on Linear layers is taken over; anything else (DoRA and other variants) keeps
peft's path, so results never silently change."""

from __future__ import annotations

import types
from typing import Any

import torch
from peft import PeftModel
from peft.tuners.lora import layer as lora_layer


class StackedLora:
    def __init__(self) -> None:
        self.rows: torch.Tensor | None = None  # adapter index per batch row, set per forward
        self.index: dict[str, int] = {}

    def install(self, model: PeftModel) -> None:
        """(Re)builds the stacks from the adapters `model` has now; call after every load or
        unload."""
        names = list(model.peft_config)
        self.index = {name: i + 1 for i, name in enumerate(names)}
        for module in model.modules():
            if isinstance(module, lora_layer.Linear) and not module.lora_variant:
                self._stack(module, names)

    def _stack(self, module: lora_layer.Linear, names: list[str]) -> None:
        present = [n for n in names if n in module.lora_A]
        rank = max((module.lora_A[n].weight.shape[0] for n in present), default=1)
        base = module.base_layer
        dtype = base.weight.dtype
        a = torch.zeros(len(names) + 1, rank, base.in_features, dtype=dtype)
        b = torch.zeros(len(names) + 1, base.out_features, rank, dtype=dtype)
        for i, name in enumerate(names, start=1):
            if name in present:
                weight_a = module.lora_A[name].weight
                a[i, : weight_a.shape[0]] = weight_a
                b[i, :, : weight_a.shape[0]] = module.lora_B[name].weight * module.scaling[name]
        module._stacked_a, module._stacked_b, module._stacked = a, b, self
        if not hasattr(module, "_peft_forward"):
            module._peft_forward = module.forward
            module.forward = types.MethodType(_forward, module)

    def adapter_rows(self, adapters: list[str | None]) -> torch.Tensor:
        return torch.tensor([self.index.get(a, 0) if a else 0 for a in adapters])


def _forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    stacked: StackedLora = self._stacked
    if stacked.rows is None or self.disable_adapters or self.merged:
        return self._peft_forward(x, *args, **kwargs)
    result = self.base_layer(x, *args, **kwargs)
    rows = stacked.rows
    low = torch.bmm(x.to(self._stacked_a.dtype), self._stacked_a[rows].transpose(1, 2))
    return result + torch.bmm(low, self._stacked_b[rows].transpose(1, 2)).to(result.dtype)
