"""MetricSource for Prometheus, through prometheus-api-client."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from .source import MetricError


class PrometheusSource:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        # No retries inside one query: the analysis clock retries with its own backoff, and a
        # reconcile must not block on a Prometheus that is down.
        self._client = PrometheusConnect(
            url=url, disable_ssl=True, timeout=timeout, retry=Retry(total=0)
        )

    def query(self, promql: str, at: datetime | None = None) -> float | None:
        params = {"time": f"{at.timestamp():.3f}"} if at is not None else None
        try:
            result = self._client.custom_query(promql, params=params)
        except PrometheusApiClientException as exc:
            raise MetricError(f"prometheus refused the query: {_prometheus_message(exc)}") from None
        except requests.RequestException as exc:
            raise MetricError(
                f"prometheus at {self.url} is unreachable: {_root_cause(exc)}"
            ) from None
        if not isinstance(result, list):
            raise MetricError(f"prometheus answered {type(result).__name__}, expected a vector")
        if not result:
            return None
        if len(result) > 1:
            raise MetricError(
                f"the query returned {len(result)} series; it must aggregate to one (use sum())"
            )
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value


def _prometheus_message(exc: PrometheusApiClientException) -> str:
    """Prometheus' own error text, out of the client's "HTTP Status Code 400 (b'{...}')"."""
    text = str(exc)
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        try:
            body = json.loads(text[start : end + 1].encode().decode("unicode_escape"))
            return f"{body.get('errorType', 'error')}: {body.get('error', text)}"
        except ValueError:
            pass
    return text


def _root_cause(exc: requests.RequestException) -> str:
    """ "[Errno 111] Connection refused" rather than urllib3's paragraph around it."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] [^'\")]*", text)
    if found:
        return found.group(0)
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return text[:200]
