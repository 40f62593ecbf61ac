"""The real Prometheus scrapes the model server, and a built-in template measures it."""

from __future__ import annotations

import re

import pytest
from ftrelease.analysis.evaluate import Measurement
from ftrelease.analysis.measure import measure
from ftrelease.analysis.prometheus import PrometheusSource
from ftrelease.analysis.templates import TEMPLATES, render
from ftrelease.api.strategy import Metric

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
    query = TEMPLATES["refusal-rate"]
    variables = {"release": "bot", "revision": "r7", "interval": "2m"}
    # The zeroed series are scraped before any request.
    wait_until("first scrape", lambda: prometheus.query(render(query.total, variables)), 30)
    for _ in range(3):
        server.text("m", "hello, how can", 8)  # refused
        server.text("m", "refunds take", 8)  # not

    def scraped(template: str) -> float:
        return float(prometheus.query(render(template, variables))[0]["value"][1])

    # One scrape may catch a request counted as served and not yet as refused: wait for both.
    wait_until("requests scraped", lambda: scraped(query.total) >= 5.9, 30)
    wait_until("refusals scraped", lambda: scraped(query.bad) >= 2.9, 30)
    rate = float(prometheus.query(render(query.value, variables))[0]["value"][1])
    assert rate == pytest.approx(0.5, abs=1e-9)
    errors = float(
        prometheus.query(render(TEMPLATES["error-rate"].value, variables))[0]["value"][1]
    )
    assert errors == 0


def test_slow_requests_template_reads_the_histogram_bucket(tiny, servers, prometheus):
    """The operator's own measure() through the real Prometheus: latencyBound becomes the
    histogram's `le` label as the server writes it, so the bucket series is found."""
    server = servers(f"--base={tiny.base}", "--model-name=m", "--release=slowbot", "--revision=c1")
    prometheus.scrape_static("modelserver-slow", [f"127.0.0.1:{server.port}"])
    metric = Metric(name="slow", template="slow-requests", latencyBound="4s")
    variables = {
        "namespace": "ml",
        "release": "slowbot",
        "revision": "c1",
        "stableRevision": "c0",  # never served: no series
        "interval": "5m",
    }
    source = PrometheusSource(prometheus.url)

    def counted() -> Measurement:
        return measure(metric, source, variables)

    total = render(TEMPLATES["slow-requests"].total, variables)
    wait_until("zeroed series scraped", lambda: prometheus.query(total), 30)
    for _ in range(4):
        server.text("m", "hello", 2)
    wait_until("requests scraped", lambda: counted().candidate.total >= 3.9, 30)
    found = counted()
    assert found.error is None
    assert found.candidate.bad == pytest.approx(0, abs=1e-9)  # all faster than 4s
    assert (found.stable.bad, found.stable.total) == (0, 0)
    # A bound that is no bucket of the histogram is an Error, not "no slow requests" (the API
    # refuses it; a server with other buckets would meet it here).
    off_bucket = metric.model_copy(update={"latency_bound": "3s"})  # past the API's check
    error = measure(off_bucket, source, variables).error
    assert error is not None and 'no histogram bucket le="3.0"' in error
