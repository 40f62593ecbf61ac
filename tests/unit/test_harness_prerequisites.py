"""The harness refuses loudly, naming what to install, when a prerequisite is missing."""

from __future__ import annotations

import subprocess

import pytest

from tests.cluster.localprometheus import LocalPrometheus


def test_missing_prometheus_says_what_to_build(tmp_path):
    with pytest.raises(RuntimeError, match=r"make cluster-binaries"):
        LocalPrometheus(workdir=tmp_path / "prom", binary=tmp_path / "prometheus").start()


def test_missing_go_says_what_to_install(tmp_path):
    # /usr/bin/env and bash stay reachable; go does not.
    result = subprocess.run(
        ["/bin/bash", "scripts/install-system-deps.sh"],
        env={"PATH": "/nonexistent"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Go >= 1.26.7 is required" in result.stderr
