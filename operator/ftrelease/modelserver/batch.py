"""The rows being decoded together and their KV cache, for continuous batching: new rows join
between decoding steps (their prefill's cache is left-padded to the batch's length and stacked
onto it), finished or abandoned rows leave (their cache rows are dropped, and columns no row
attends to any more are trimmed). Padding is masked out, so a row's tokens are the same
whatever it shares the batch with. Tensor bookkeeping only; the engine runs the model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache


@dataclass
class Batch:
    cache: DynamicCache
    attention: torch.Tensor  # [rows, length]: 1 for a real token, 0 for padding
    positions: torch.Tensor  # [rows]: the position of each row's next token

    @property
    def rows(self) -> int:
        return int(self.attention.shape[0])

    @property
    def length(self) -> int:
        return int(self.attention.shape[1])

    def append_step(self) -> None:
        """After a decoding step: one more real token per row."""
        ones = torch.ones(self.rows, 1, dtype=self.attention.dtype)
        self.attention = torch.cat([self.attention, ones], dim=-1)
        self.positions = self.positions + 1

    def keep(self, rows: list[int]) -> None:
        """Only these rows stay (in this order); columns nobody attends to are trimmed."""
        index = torch.tensor(rows, dtype=torch.long)
        self.attention = self.attention[index]
        self.positions = self.positions[index]
        attended = self.attention.any(dim=0).nonzero()
        start = int(attended[0]) if len(attended) else self.length
        self.attention = self.attention[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]

    def join(self, other: Batch) -> None:
        """Stacks `other`'s rows under these, left-padding the shorter one's cache."""
        length = max(self.length, other.length)
        self._pad_to(length)
        other._pad_to(length)
        self.attention = torch.cat([self.attention, other.attention])
        self.positions = torch.cat([self.positions, other.positions])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([mine.keys, theirs.keys])
            mine.values = torch.cat([mine.values, theirs.values])

    def _pad_to(self, length: int) -> None:
        missing = length - self.length
        if missing <= 0:
            return
        self.attention = F.pad(self.attention, (missing, 0))
        for layer in self.cache.layers:
            layer.keys = F.pad(layer.keys, (0, 0, missing, 0))
            layer.values = F.pad(layer.values, (0, 0, missing, 0))
