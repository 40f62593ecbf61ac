"""The real Prometheus scrapes the model server, and a built-in template measures it."""

from __future__ import annotations

import re

import pytest
from ftrelease.analysis.templates import BUILTIN, render

from tests.cluster.processes import wait_until

pytestmark = [pytest.mark.serve, pytest.mark.e2e]


def test_refusal_rate_template_over_prometheus(tiny, servers, prometheus):
    probe = servers(f"--base={tiny.base}", "--model-name=m")
    refused = probe.text("m", "hello, how can", 8)
    server = servers(
        f"--base={tiny.base}",
        "--model-name=m",
        "--release=bot",
        "--revision=r7",
        f"--refusal-pattern={re.escape(refused)}",
    )
    prometheus.scrape_static("modelserver", [f"127.0.0.1:{server.port}"])
    query = BUILTIN["refusal-rate"]
    variables = {"release": "bot", "revision": "r7", "interval": "2m"}
    # The zeroed series are scraped before any request.
    wait_until("first scrape", lambda: prometheus.query(render(query.total, variables)), 30)
    for _ in range(3):
        server.text("m", "hello, how can", 8)  # refused
        server.text("m", "refunds take", 8)  # not
    total = render(query.total, variables)
    wait_until("requests scraped", lambda: float(prometheus.query(total)[0]["value"][1]) >= 5.9, 30)
    rate = float(prometheus.query(render(query.value, variables))[0]["value"][1])
    assert rate == pytest.approx(0.5, abs=1e-9)
    errors = float(prometheus.query(render(BUILTIN["error-rate"].value, variables))[0]["value"][1])
    assert errors == 0
