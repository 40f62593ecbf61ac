"""The revision's bundle as a runtime reads it (the bundle.json the operator mounts), and its
system prompt put in front of a conversation: shared by the builtin server and the response
checker, so a client meets the same prompt on either runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftrelease.api.bundle import Prompt


class BundleProblem(Exception):
    """The revision's bundle.json is missing, unreadable or for another revision."""


def read_bundle_prompt(path: Path, revision: str) -> Prompt:
    """The bundle's prompt. A bundle asked for and not there, or written for another revision,
    keeps the server unready: answering without the bundle's system prompt or format check would
    be serving something other than the revision."""
    try:
        document = json.loads(path.read_text())
        prompt = Prompt.model_validate((document.get("bundle") or {}).get("prompt") or {})
    except (OSError, ValueError, AttributeError) as exc:
        raise BundleProblem(f"{path}: {exc}") from None
    written_for = document.get("revision")
    if revision and written_for and written_for != revision:
        raise BundleProblem(f"{path} is revision {written_for}'s, this server is {revision}")
    return prompt


def text_of(content: Any) -> str:
    """A message's content as text: a string, or its text parts joined by newlines (vLLM's)."""
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def lead_with(system: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with the bundle's system prompt first: a client's system or developer
    messages follow it in the same system turn, so no client can take the fine-tune's
    instructions away. The other messages are kept as they are."""
    own = [text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
    parts = [system, *own] if system else own
    rest = [m for m in messages if m.get("role") not in ("system", "developer")]
    return [{"role": "system", "content": "\n\n".join(parts)}, *rest] if parts else rest
