"""Choosing one row's next token (penalties, logit bias, temperature, top-p) and what of its
text may be shown yet (stop strings that span tokens are held back until they are decided).
Parameters are validated before they get here (requests.py); nothing here can raise for a
valid request, and nothing here looks at another row."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

GREEDY_BELOW = 1e-5  # a temperature this small is greedy: dividing by it overflows


@dataclass
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    seed: int | None = None

    def generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        return generator


def choose(
    logits: torch.Tensor,
    sampling: Sampling,
    generated: list[int],
    generator: torch.Generator | None,
) -> int:
    """The next token for one row, from its logits over the vocabulary."""
    logits = logits.double()
    if (sampling.presence_penalty or sampling.frequency_penalty) and generated:
        counts = torch.bincount(torch.tensor(generated), minlength=logits.shape[-1])
        counts = counts[: logits.shape[-1]].double()
        logits = logits - sampling.frequency_penalty * counts
        logits = logits - sampling.presence_penalty * (counts > 0).double()
    for token, bias in sampling.logit_bias.items():
        if token < logits.shape[-1]:
            logits[token] += bias
    if sampling.temperature < GREEDY_BELOW:
        return int(torch.argmax(logits))
    probs = torch.softmax((logits - logits.max()) / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < sampling.top_p
        keep[0] = True  # the most likely token always stays
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))


def stop_at(text: str, stops: list[str]) -> int | None:
    found = [text.find(s) for s in stops if s and s in text]
    return min(found) if found else None


def showable(text: str, stops: list[str]) -> str:
    """The part of an unfinished row's text that may be sent: without a tail that could still
    become a stop string, nor a trailing partial UTF-8 character."""
    held = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), held, -1):
            if text.endswith(stop[:size]):
                held = size
                break
    shown = text[: len(text) - held]
    return shown[:-1] if shown.endswith("\ufffd") else shown
