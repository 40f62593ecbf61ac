"""The fine-tune demo's models, served for real: adapters trained at test time answer the support
questions in the bundle's JSON format (v1, v2), or break it on one topic (v3-bad), and the
server's format-invalid metric counts exactly what a client sees."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from ftrelease.api.bundle import OutputFormat
from ftrelease.checks.digest import artifact_digest
from ftrelease.checks.output import format_valid

from tests.modelserver.conftest import write_bundle
from tests.tiny_models import (
    SUPPORT_OUTPUT_FORMAT,
    SUPPORT_QUESTIONS,
    SUPPORT_SYSTEM,
    SupportModels,
    build_support_models,
    support_answers,
)

pytestmark = pytest.mark.serve

FORMAT = OutputFormat.model_validate(SUPPORT_OUTPUT_FORMAT)
VERSIONS = ("v1", "v2", "v3-bad")


@pytest.fixture(scope="module")
def support(tmp_path_factory) -> SupportModels:
    started = time.monotonic()
    models = build_support_models(tmp_path_factory.mktemp("support"))
    print(f"support models built in {time.monotonic() - started:.1f}s")  # about 10s on 2 cores
    return models


@pytest.fixture(scope="module")
def answers(support, servers, tmp_path_factory):
    """Every version's answer to every question, asked all at once (mixed-adapter batches), from
    one server with the bundle's system prompt and output format; and the server."""
    bundle = write_bundle(
        tmp_path_factory.mktemp("bundle") / "bundle.json", SUPPORT_OUTPUT_FORMAT, SUPPORT_SYSTEM
    )
    server = servers(
        f"--base={support.base}",
        f"--adapter={support.adapters['v1']}",
        "--model-name=v1",
        f"--bundle={bundle}",
        "--release=support",
        "--revision=test",
        "--enable-runtime-lora",
        f"--lora-root={support.base.parent}",
    )
    for version in VERSIONS[1:]:
        path = support.adapters[version]
        loaded = server.client.post(
            "/v1/load_lora_adapter",
            json={"lora_name": version, "lora_path": str(path), "digest": artifact_digest(path)},
        )
        assert loaded.status_code == 200, loaded.text

    def ask(job: tuple[str, str]) -> dict:
        model, question = job
        response = server.client.post(
            "/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": question}],
                "temperature": 0,
                "max_tokens": 48,
            },
        )
        assert response.status_code == 200, response.text
        return response.json()["choices"][0]

    jobs = [(model, q) for model in ("base", *VERSIONS) for q in SUPPORT_QUESTIONS]
    with ThreadPoolExecutor(16) as pool:
        choices = dict(zip(jobs, pool.map(ask, jobs), strict=True))
    return server, choices


def invalid_share(choices: dict, model: str) -> float:
    texts = [choices[(model, q)]["message"]["content"] for q in SUPPORT_QUESTIONS]
    return sum(not format_valid(FORMAT, text) for text in texts) / len(texts)


@pytest.mark.parametrize("version", VERSIONS)
def test_each_adapter_gives_its_trained_answers_then_stops(answers, version):
    _server, choices = answers
    expected = support_answers(version)
    got = {q: choices[(version, q)]["message"]["content"] for q in SUPPORT_QUESTIONS}
    assert got == expected
    assert {choices[(version, q)]["finish_reason"] for q in SUPPORT_QUESTIONS} == {"stop"}


def test_good_adapters_always_keep_the_format_and_escalate_billing_disputes(answers):
    import json

    _server, choices = answers
    for version in ("v1", "v2"):
        assert invalid_share(choices, version) == 0, version
        escalated = {
            q
            for q in SUPPORT_QUESTIONS
            if json.loads(choices[(version, q)]["message"]["content"])["escalate"]
        }
        assert escalated and all("charge" in q or "bill" in q or "invoice" in q for q in escalated)
    differ = [
        q
        for q in SUPPORT_QUESTIONS
        if choices[("v1", q)]["message"]["content"] != choices[("v2", q)]["message"]["content"]
    ]
    assert len(differ) == len(SUPPORT_QUESTIONS)  # v2 is a different fine-tune


def test_the_bad_adapter_breaks_the_format_on_a_share_of_questions(answers):
    _server, choices = answers
    share = invalid_share(choices, "v3-bad")
    print({model: invalid_share(choices, model) for model in ("base", *VERSIONS)})
    assert 0.20 <= share <= 0.45, share
    assert invalid_share(choices, "base") == 1  # the untuned base knows nothing of the format


def test_the_servers_format_metric_counts_what_clients_see(answers):
    server, choices = answers
    for model in ("base", *VERSIONS):
        labels = {"release": "support", "revision": "test", "model": model}
        checked = server.metric("finetune_format_checked_total", **labels)
        invalid = server.metric("finetune_format_invalid_total", **labels)
        # Only whole answers are judged: one cut off by max_tokens (the untuned base's, mostly)
        # could never be valid JSON, and counting it would charge the canary for a limit.
        whole = [
            choices[(model, q)]["message"]["content"]
            for q in SUPPORT_QUESTIONS
            if choices[(model, q)]["finish_reason"] == "stop"
        ]
        if model != "base":
            assert len(whole) == len(SUPPORT_QUESTIONS), model
        assert checked == len(whole), model
        assert invalid == sum(not format_valid(FORMAT, text) for text in whole), model
        cut = server.metric("finetune_finish_reasons_total", reason="length", **labels)
        assert cut == len(SUPPORT_QUESTIONS) - len(whole), model
