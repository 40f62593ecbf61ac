"""The health a GitOps tool reads from a FineTuneRelease: Argo CD's (manifests/argocd/health.lua
run by gopher-lua, as Argo CD runs it) and kstatus' (Flux, `kubectl wait`), through the Go
program beside this file, built from the Go module proxy and cached like the control plane."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RECORDED = HERE / "recorded"  # status objects recorded from e2e runs (tests/e2e/test_health.py)

# What each recorded state must read as: (Argo CD, kstatus).
EXPECTED = {
    "promoted": ("Healthy", "Current"),
    "promoted-spec-not-yet-observed": ("Progressing", "InProgress"),
    "waiting-for-pods": ("Progressing", "InProgress"),
    "shadow": ("Progressing", "InProgress"),
    "canary-1": ("Progressing", "InProgress"),
    "canary-10": ("Progressing", "InProgress"),
    "paused": ("Suspended", "InProgress"),
    "aborted": ("Degraded", "Failed"),
    "set-back-to-stable": ("Healthy", "Current"),
    "rolled-back-after-promotion": ("Degraded", "Failed"),
    "gated": ("Degraded", "Failed"),
    "stalled": ("Degraded", "Failed"),
}


def build() -> Path:
    """The health-check binary, built once per version of its sources."""
    sources = [HERE / name for name in ("main.go", "go.mod", "go.sum")]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    cache = Path(
        os.environ.get("FTRELEASE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "finetune-release-operator"
    )
    binary = cache / f"health-check-{key}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".tmp")
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
        subprocess.run(
            ["go", "build", "-trimpath", "-o", str(partial), "."], cwd=HERE, env=env, check=True
        )
        partial.rename(binary)
    return binary


def healths(files: list[Path]) -> dict[str, dict]:
    """{file stem: {"argo": {status, message}, "kstatus": {status, message}}}."""
    result = subprocess.run(
        [str(build()), "-lua", str(REPO / "manifests" / "argocd" / "health.lua"), *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = {}
    for line in result.stdout.splitlines():
        verdict = json.loads(line)
        found[Path(verdict["file"]).stem] = verdict
    return found
