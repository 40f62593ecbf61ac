"""Encoding objects for the apiserver."""

from __future__ import annotations

import json
import re
from typing import Any

# Characters YAML 1.2 does not allow unescaped (C0/C1 controls, DEL, U+FFFE/U+FFFF).
_NOT_YAML_PRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")


def apply_patch_text(obj: dict[str, Any]) -> str:
    """JSON for a server-side apply patch, which the apiserver decodes as YAML. The Kubernetes
    client's encoder escapes characters beyond the BMP as surrogate pairs, which that decoder
    refuses; so they are written as they are, and only what YAML cannot carry raw is escaped."""
    text = json.dumps(obj, ensure_ascii=False)
    return _NOT_YAML_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
