"""The Prometheus metrics of every runtime's answers (the builtin server's, the response
checker's beside vLLM). Every series carries the release, revision, model name and adapter, so
the analysis templates (ftrelease.analysis) can compare candidate and stable."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ftrelease.api.strategy import LATENCY_BUCKETS  # latencyBound is validated against these

LABELS = ["release", "revision", "model", "adapter"]
# 499: the client went away before its answer was done (nginx's code for it).
CODES = ("200", "400", "404", "413", "429", "499", "500", "503")


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "finetune_requests", "Requests by HTTP status code.", [*LABELS, "code"], registry=r
        )
        self.duration = Histogram(
            "finetune_request_duration_seconds",
            "End-to-end request latency.",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "finetune_time_to_first_token_seconds",
            "Time to the first generated token.",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter("finetune_prompt_tokens", "Prompt tokens.", LABELS, registry=r)
        self.generated_tokens = Counter(
            "finetune_generated_tokens", "Generated tokens.", LABELS, registry=r
        )
        self.format_invalid = Counter(
            "finetune_format_invalid",
            "Responses that break the declared output format.",
            LABELS,
            registry=r,
        )
        self.format_checked = Counter(
            "finetune_format_checked",
            "Responses checked against a declared output format.",
            LABELS,
            registry=r,
        )
        self.refusals = Counter(
            "finetune_refusals", "Responses matching a refusal pattern.", LABELS, registry=r
        )
        self.escalations = Counter(
            "finetune_escalations",
            "Responses handed to a human by the bundle's escalation rule.",
            LABELS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "finetune_batch_rows",
            "Requests decoded together.",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.batch_adapters = Histogram(
            "finetune_batch_adapters",
            "Distinct adapters in one decoding batch.",
            buckets=(1, 2, 4, 8, 16, 32),
            registry=r,
        )
        self.in_flight = Gauge(
            "finetune_requests_in_flight", "Requests being served.", LABELS, registry=r
        )
        self.finish_reasons = Counter(
            "finetune_finish_reasons",
            "Generated choices by why they ended: stop (complete), length (cut off).",
            [*LABELS, "reason"],
            registry=r,
        )
        self.request_tokens = Histogram(
            "finetune_request_generated_tokens",
            "Tokens generated per request (all its choices).",
            LABELS,
            buckets=(1, 4, 16, 64, 256, 1024, 4096),
            registry=r,
        )
        self.queue_depth = Gauge(
            "finetune_queue_depth", "Requests waiting to join the decoding batch.", registry=r
        )

    def prime(self, labels: dict[str, str]) -> None:
        """Creates a model's series at zero before its first request: Prometheus cannot see an
        increase from a counter's first sample, so one born at 5 would hide those 5 requests."""
        for code in CODES:
            self.requests.labels(**labels, code=code)
        for reason in ("stop", "length"):
            self.finish_reasons.labels(**labels, reason=reason)
        for metric in (
            self.duration,
            self.first_token,
            self.prompt_tokens,
            self.generated_tokens,
            self.format_invalid,
            self.format_checked,
            self.refusals,
            self.escalations,
            self.in_flight,
            self.request_tokens,
        ):
            metric.labels(**labels)

    def record_request(
        self,
        labels: dict[str, str],
        code: int,
        seconds: float,
        first_token_seconds: float | None,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        """One request's own series (its answers' checks are checks.answers)."""
        self.requests.labels(**labels, code=str(code)).inc()
        self.duration.labels(**labels).observe(seconds)
        if first_token_seconds is not None:
            self.first_token.labels(**labels).observe(first_token_seconds)
        self.prompt_tokens.labels(**labels).inc(prompt_tokens)
        self.generated_tokens.labels(**labels).inc(completion_tokens)
        self.request_tokens.labels(**labels).observe(completion_tokens)
