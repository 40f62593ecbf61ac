"""The builtin model server as real processes on tiny models made at test time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from ftrelease.checks.digest import artifact_digest

from tests.modelserver.conftest import write_bundle

pytestmark = pytest.mark.serve

PROMPTS = ["the support assistant", "refunds take", "hello, how can", "please return the"]


def test_base_and_each_adapter_answer_differently(tiny, servers):
    server = servers(
        f"--base={tiny.base}",
        f"--adapter={tiny.adapters[0]}",
        "--model-name=bot-a",
        f"--adapter-digest={artifact_digest(tiny.adapters[0])}",
        "--enable-runtime-lora",
        f"--lora-root={tiny.root}",
    )
    load = {"lora_path": str(tiny.adapters[1]), "digest": artifact_digest(tiny.adapters[1])}
    loaded = server.client.post("/v1/load_lora_adapter", json={"lora_name": "bot-b", **load})
    assert loaded.status_code == 200, loaded.text
    names = {m["id"] for m in server.client.get("/v1/models").json()["data"]}
    assert names == {"bot-a", "bot-b", "base"}
    for prompt in PROMPTS[:2]:
        texts = {name: server.text(name, prompt) for name in ("base", "bot-a", "bot-b")}
        assert all(texts.values())
        assert len(set(texts.values())) == 3, texts


def test_merged_model_equals_base_plus_adapter(tiny, servers):
    import torch
    from ftrelease.modelserver.engine import load_model, load_tokenizer
    from peft import PeftModel

    out = tiny.merged()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftrelease.modelserver.merge",
            f"--base={tiny.base}",
            f"--adapter={tiny.adapters[0]}",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    digest = result.stdout.strip().splitlines()[-1]
    assert digest == artifact_digest(out)
    assert (out / "model.safetensors").exists()

    # Logits agree within 1e-4 (float32 rounding of the folded weights).
    tokenizer = load_tokenizer(tiny.base)
    ids = tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        adapted = PeftModel.from_pretrained(load_model(tiny.base), str(tiny.adapters[0])).eval()
        expected = adapted(**ids).logits
        merged = load_model(out)(**ids).logits
    assert torch.max(torch.abs(expected - merged)).item() < 1e-4

    merged_server = servers(f"--merged={out}", f"--merged-digest={digest}", "--model-name=bot")
    adapter_server = servers(
        f"--base={tiny.base}", f"--adapter={tiny.adapters[0]}", "--model-name=bot"
    )
    for prompt in PROMPTS:
        assert merged_server.text("bot", prompt, 16) == adapter_server.text("bot", prompt, 16)


def test_digest_mismatch_keeps_the_server_unready(tiny, servers):
    wrong = "sha256:" + "0" * 64
    server = servers(
        f"--base={tiny.base}",
        f"--adapter={tiny.adapters[0]}",
        "--model-name=bot",
        f"--adapter-digest={wrong}",
        wait_ready=False,
    )
    response = server.client.get("/ready")
    assert response.status_code == 503
    assert "digest mismatch" in response.json()["reason"]
    assert wrong in response.json()["reason"]
    refused = server.client.post("/v1/completions", json={"model": "bot", "prompt": "hi"})
    assert refused.status_code == 503
    assert server.client.get("/health").status_code == 200  # alive, just not ready


def test_mixed_adapter_batching_gives_the_same_tokens_as_one_at_a_time(tiny, servers):
    server = servers(
        f"--base={tiny.base}",
        f"--adapter={tiny.adapters[0]}",
        "--model-name=a0",
        "--max-batch=16",
        "--batch-wait-ms=100",
        "--enable-runtime-lora",
        f"--lora-root={tiny.root}",
    )
    for i, path in enumerate(tiny.adapters[1:], start=1):
        load = {"lora_name": f"a{i}", "lora_path": str(path), "digest": artifact_digest(path)}
        assert server.client.post("/v1/load_lora_adapter", json=load).status_code == 200
    jobs = [(f"a{i % 8}", PROMPTS[i % len(PROMPTS)]) for i in range(16)]
    alone = {job: server.text(*job, max_tokens=10) for job in set(jobs)}
    rows_before = server.metric("finetune_batch_rows_sum")
    batches_before = server.metric("finetune_batch_rows_count")
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda job: server.text(*job, max_tokens=10), jobs))
    assert together == [alone[job] for job in jobs]
    # They really went through shared decoding steps, mixing adapters: 16 requests of 10
    # tokens are 144 row-steps after their prefills, in far fewer steps than that.
    rows = server.metric("finetune_batch_rows_sum") - rows_before
    steps = server.metric("finetune_batch_rows_count") - batches_before
    assert rows == 16 * 9 and steps <= rows / 4
    assert server.metric("finetune_batch_adapters_bucket", le="1.0") < server.metric(
        "finetune_batch_adapters_count"
    )


def chat(server, prompt: str, max_tokens: int, stop: list[str] | None = None):
    """A greedy chat answer through the official client: (text, finish_reason)."""
    answer = server.openai().chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stop=stop,
    )
    return answer.choices[0].message.content, answer.choices[0].finish_reason


def whole_answer(server, prompt: str) -> tuple[str, list[str]]:
    """A greedy chat answer that ends complete (finish_reason stop): the first 8 tokens' text,
    ended by a stop string made of what the model says next. (The random tiny model does not
    say its end-of-sequence token by itself.)"""
    short, _ = chat(server, prompt, 8)
    longer, _ = chat(server, prompt, 16)
    stop = longer[len(short) : len(short) + 3]
    assert longer.startswith(short) and stop and longer.find(stop) == len(short)
    return short, [stop]


def test_format_and_refusal_counters_follow_the_whole_chat_answers(tiny, servers, tmp_path):
    probe = servers(f"--base={tiny.base}", "--model-name=m")
    (first, stop_first), (second, stop_second) = (whole_answer(probe, p) for p in PROMPTS[:2])
    assert first != second
    # A refusal pattern crafted to match the first prompt's answer and not the second's.
    bundle = write_bundle(
        tmp_path / "bundle.json", {"type": "regex", "pattern": re.escape(second.strip())}
    )
    # The second answer is also the one the bundle's escalation rule hands to a person.
    document = json.loads(bundle.read_text())
    document["bundle"]["prompt"]["escalation"] = {"pattern": re.escape(second.strip())}
    bundle.write_text(json.dumps(document))
    server = servers(
        f"--base={tiny.base}",
        "--model-name=m",
        f"--bundle={bundle}",
        f"--refusal-pattern={re.escape(first)}",
        "--release=bot",
        "--revision=r1",
    )
    for _ in range(3):
        assert chat(server, PROMPTS[0], 16, stop_first) == (first, "stop")
    assert chat(server, PROMPTS[1], 16, stop_second) == (second, "stop")
    raw = server.text("m", PROMPTS[1], 8)  # a raw completion: not an answer to judge
    cut, reason = chat(server, PROMPTS[1], 3)  # cut off: not judged either
    assert reason == "length"
    labels = {"release": "bot", "revision": "r1", "model": "m", "adapter": "__base__"}
    assert server.metric("finetune_requests_total", code="200", **labels) == 6
    assert server.metric("finetune_refusals_total", **labels) == 3
    assert server.metric("finetune_format_checked_total", **labels) == 4
    assert server.metric("finetune_format_invalid_total", **labels) == 3  # only the second matches
    assert server.metric("finetune_finish_reasons_total", reason="length", **labels) == 2
    assert server.metric("finetune_finish_reasons_total", reason="stop", **labels) == 4
    handed_over = 1 + sum(second.strip() in text for text in (raw, cut, first))
    assert server.metric("finetune_escalations_total", **labels) == handed_over


def test_bad_input_gets_openai_errors_and_the_server_keeps_serving(tiny, servers):
    server = servers(
        f"--base={tiny.base}", "--model-name=m", "--max-tokens-limit=64", "--max-body-bytes=20000"
    )
    c = server.client

    def error(response, status):
        assert response.status_code == status, response.text
        body = response.json()["error"]
        assert body["message"] and body["type"]
        return body

    error(c.post("/v1/completions", content=b"{not json"), 400)
    assert (
        error(c.post("/v1/completions", json={"model": "nope", "prompt": "x"}), 404)["code"]
        == "model_not_found"
    )
    assert (
        error(c.post("/v1/completions", json={"model": "m", "prompt": "hello " * 300}), 400)["code"]
        == "context_length_exceeded"
    )
    assert (
        error(c.post("/v1/completions", json={"model": "m", "prompt": "x", "max_tokens": 65}), 400)[
            "param"
        ]
        == "max_tokens"
    )
    error(
        c.post(
            "/v1/completions", content=b"x" * 30000, headers={"content-type": "application/json"}
        ),
        413,
    )
    error(c.post("/v1/chat/completions", json={"model": "m", "messages": "hi"}), 400)

    def mixed(i: int) -> int:
        if i % 3 == 0:
            return c.post("/v1/completions", content=b"{bad").status_code
        return c.post(
            "/v1/completions", json={"model": "m", "prompt": PROMPTS[i % 4], "max_tokens": 8}
        ).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(mixed, range(36)))
    assert codes.count(400) == 12 and codes.count(200) == 24
    assert server.metric("finetune_requests_total", code="400") >= 16


def test_streaming_chat_matches_the_plain_answer(tiny, servers, tmp_path):
    bundle = write_bundle(tmp_path / "b.json", system="You are terse.")
    server = servers(f"--base={tiny.base}", "--model-name=m", f"--bundle={bundle}")
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 10,
        "temperature": 0,
    }
    plain = server.client.post("/v1/chat/completions", json=body).json()
    assert plain["object"] == "chat.completion"
    assert plain["usage"]["completion_tokens"] == 10
    chunks = []
    with server.client.stream(
        "POST", "/v1/chat/completions", json={**body, "stream": True}
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(line[6:])
    import json

    streamed = "".join(json.loads(c)["choices"][0]["delta"]["content"] for c in chunks)
    assert streamed == plain["choices"][0]["message"]["content"]
    # The bundle's system prompt is part of what the model saw.
    assert (
        plain["usage"]["prompt_tokens"]
        > server.complete("m", "<|user|>hello\n<|assistant|>", 1)["usage"]["prompt_tokens"]
    )


def test_samples_are_kept_bounded_and_redacted_on_the_admin_port(tiny, servers, tmp_path):
    bundle = write_bundle(tmp_path / "b.json", system="SECRET-SYSTEM-PROMPT")
    server = servers(
        f"--base={tiny.base}",
        "--model-name=m",
        f"--bundle={bundle}",
        "--sample-rate=1",
        "--sample-capacity=3",
        r"--redact=\b\d{4}-\d{4}\b",
    )
    for i in range(5):
        chat(server, f"card 1234-567{i} refund", 4)
    assert server.client.get("/v1/samples").status_code == 404, "not on the serving port"
    samples = server.admin.get("/v1/samples").json()["data"]
    assert len(samples) == 3
    for sample in samples:
        [message] = sample["messages"]  # what the user sent, not the rendered prompt
        assert message["role"] == "user" and "[REDACTED]" in message["content"]
        assert "1234" not in str(sample) and "SECRET" not in str(sample)
        assert sample["finish_reason"] == "length" and sample["response"]
    assert [s["messages"] for s in server.admin.get("/v1/samples?limit=1").json()["data"]] == [
        samples[-1]["messages"]
    ]
    assert server.admin.delete("/v1/samples").json() == {"cleared": 3}
    assert server.admin.get("/v1/samples").json()["data"] == []


def test_the_operator_passes_exactly_the_arguments_this_server_takes():
    from ftrelease.api.ownership import ReleaseRef
    from ftrelease.api.resource import FineTuneRelease
    from ftrelease.modelserver.__main__ import parser
    from ftrelease.serving.objects import revision_objects

    from tests.api_cases import load_example

    for example, artifact in (
        ("summarizer-merged-builtin.yaml", "merged"),
        ("classifier-replicas.yaml", "adapter"),
    ):
        spec = FineTuneRelease.model_validate(load_example(example)).spec
        objects = revision_objects(
            ReleaseRef("r", "ns", "uid"), "0123456789", spec, spec.bundle, 1, "stable"
        )
        container = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"][
            "spec"
        ]["containers"][0]
        assert container["command"][-1] == "ftrelease.modelserver"
        args = parser().parse_args(container["args"])  # exits on any argument it does not take
        assert args.model_name == spec.bundle.routing.model_name
        assert args.revision == "0123456789"
        assert args.port == spec.serving.port
        if artifact == "merged":
            assert args.merged_digest == spec.bundle.artifact.digest
        else:
            assert args.adapter_digest == spec.bundle.artifact.digest and args.base
