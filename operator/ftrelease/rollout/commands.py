"""Commands: annotations that `kubectl finetune` sets on a FineTuneRelease and the operator acts
on once, then removes. Each value is a JSON object naming who asked (the user as the apiserver
knows them), the reason they gave and the command's own arguments; a plain string (an annotation
set by hand, or by an older CLI) is read as the reason, or as the stage for `approve`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

COMMAND_PREFIX = "finetune.dev/"
ABORT = COMMAND_PREFIX + "abort"
APPROVE = COMMAND_PREFIX + "approve"  # {"stage": name, or "" for the current one}
RETRY = COMMAND_PREFIX + "retry"
PAUSE = COMMAND_PREFIX + "pause"  # held in status.pausedBy until a resume
RESUME = COMMAND_PREFIX + "resume"  # also releases a hold (Inconclusive, onError, deadline)
PROMOTE = COMMAND_PREFIX + "promote"  # {"full": bool}: complete the stage now, or go to 100%
ROLLBACK = COMMAND_PREFIX + "rollback"  # {"to": revision, or "" for the previous stable}
COMMANDS = (ROLLBACK, ABORT, APPROVE, RETRY, PAUSE, RESUME, PROMOTE)

UNKNOWN_USER = "an unknown user (annotation set by hand)"


@dataclass(frozen=True)
class Command:
    annotation: str
    by: str = UNKNOWN_USER
    reason: str = ""
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.annotation.removeprefix(COMMAND_PREFIX)

    @property
    def said(self) -> str:
        """Who asked, how, and why: 'by alice (kubectl finetune abort: bad answers)'."""
        why = f": {self.reason}" if self.reason else ""
        return f"by {self.by} (kubectl finetune {self.name}{why})"

    def arg(self, key: str) -> str:
        return str(self.args.get(key) or "")


def parse(annotation: str, value: str) -> Command:
    try:
        document = json.loads(value)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        plain = value.strip()
        if annotation == APPROVE:
            return Command(annotation, args={"stage": plain})
        return Command(annotation, reason="" if plain == annotation.split("/")[-1] else plain)
    by = str(document.pop("by", "") or UNKNOWN_USER)
    reason = str(document.pop("reason", "") or "")
    return Command(annotation, by=by, reason=reason, args=document)


def encode(by: str, reason: str = "", **args: Any) -> str:
    """The annotation value `kubectl finetune` writes."""
    return json.dumps({"by": by, "reason": reason, **args}, sort_keys=True)
