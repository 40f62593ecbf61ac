"""The revision: what makes a bundle a production candidate.

revision = the first 10 hex characters of sha256 over the canonical JSON of `spec.bundle`:
defaults made explicit, unset optional fields omitted, numbers as the models normalise them
(scores are floats), keys sorted, no whitespace, UTF-8. Any change to the bundle (base model,
artifact, dataset, training config, prompt, evals, routing) is a new revision; nothing outside
the bundle (stages, analysis, replicas) changes it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .bundle import Bundle

REVISION_LENGTH = 10


def canonical_json(bundle: Bundle) -> str:
    return json.dumps(
        bundle.to_wire(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def revision_of(bundle: Bundle | dict[str, Any]) -> str:
    """The revision of a bundle, given as a model or as its wire form (which is validated)."""
    if not isinstance(bundle, Bundle):
        bundle = Bundle.model_validate(bundle)
    digest = hashlib.sha256(canonical_json(bundle).encode("utf-8")).hexdigest()
    return digest[:REVISION_LENGTH]
