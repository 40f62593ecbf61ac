"""The Prometheus metric source against the real Prometheus: values, no data, and errors that
say what Prometheus said."""

from __future__ import annotations

import pytest
from ftrelease.analysis.prometheus import PrometheusSource
from ftrelease.analysis.source import MetricError
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.cluster.processes import free_port, wait_until

pytestmark = pytest.mark.e2e


def test_values_no_data_and_errors(prometheus):
    registry = CollectorRegistry()
    Counter("source_test_events", "events", registry=registry).inc(3)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prometheus.scrape_static("source-test", [f"127.0.0.1:{port}"])
        source = PrometheusSource(prometheus.url)
        wait_until("scraped", lambda: source.query("sum(source_test_events_total)") == 3, 30)
        assert source.query('sum(source_test_events_total{job="nothing"})') is None
        with pytest.raises(MetricError, match=r"bad_data: .*parse error"):
            source.query("sum(rate(source_test_events_total[5m]")
        with pytest.raises(MetricError, match="aggregate to one"):
            source.query("up or vector(1)")
        with pytest.raises(MetricError, match="unreachable"):
            PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=2).query("up")
    finally:
        server.shutdown()
        thread.join(timeout=5)
