"""The builtin server in front of real traffic: the official OpenAI Python client and careless or
hostile callers against real server processes on tiny models. Bad input is a 4xx in the OpenAI
error shape and fails nobody else; the runtime adapter API cannot change the served model;
batching is continuous (short requests do not wait for long ones, a client that goes away stops
its generation, a full queue answers 429); and the OpenAI and vLLM parameters clients rely on
are carried out or refused by name."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from ftrelease.checks.digest import artifact_digest
from safetensors.torch import load_file, save_file

from tests.modelserver.conftest import write_bundle
from tests.modelserver.test_modelserver import PROMPTS
from tests.tiny_models import build_base

pytestmark = pytest.mark.serve

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def bot(tiny, servers):
    """base + adapter 0 served as "bot", runtime adapters allowed from the models directory."""
    return servers(
        f"--base={tiny.base}",
        f"--adapter={tiny.adapters[0]}",
        "--model-name=bot",
        "--enable-runtime-lora",
        f"--lora-root={tiny.root}",
        "--max-tokens-limit=1024",
    )


def greedy(server, model: str, prompt: str, max_tokens: int = 12) -> str:
    answer = server.openai().chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
    )
    return answer.choices[0].message.content


BAD = [
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"n": 0}, "n"),
    ({"n": 99}, "n"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 5000}, "max_tokens"),
    ({"seed": 2**70}, "seed"),
    ({"presence_penalty": 3}, "presence_penalty"),
    ({"frequency_penalty": -2.5}, "frequency_penalty"),
    ({"logit_bias": {"999999": 1}}, "logit_bias"),
    ({"logit_bias": {"5": 500}}, "logit_bias.5"),
    ({"logit_bias": {"a": 1}}, "logit_bias"),
    ({"stop": [""]}, "stop"),
    ({"stop": ["x"] * 40}, "stop"),
    ({"logprobs": True}, "logprobs"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages.0.content"),
    ({"messages": []}, "messages"),
    ({"tools": [{"type": "function"}]}, "tools"),
    ({"frobnicate": 1}, "frobnicate"),
    ({"temperature": "hot"}, "temperature"),
    ({"max_tokens": True}, "max_tokens"),
]
# In range, and extreme: each once made generation fail (a NaN, an empty top-p set).
EXTREME = [
    {"temperature": 1e-30},
    {"temperature": 2, "top_p": 1e-12},
    {"logit_bias": {str(t): -100 for t in range(300)}},
    {"logit_bias": {"7": 100}, "presence_penalty": -2, "frequency_penalty": 2},
    {"seed": 2**64 - 1, "temperature": 1.5},
    {"seed": -(2**63), "temperature": 0.7, "n": 3},
]


def test_bad_parameters_are_400s_naming_them_and_innocent_requests_all_succeed(bot):
    client = bot.openai(max_retries=0)
    innocent = [("bot", PROMPTS[i % len(PROMPTS)]) for i in range(16)]
    alone = {job: greedy(bot, *job) for job in set(innocent)}
    results: dict[str, list] = {"bad": [], "extreme": [], "innocent": []}

    def bad(case) -> None:
        body, param = case
        try:  # as the JSON body: the client would refuse some of these itself
            client.chat.completions.create(
                model="base", messages=HELLO, max_tokens=8, extra_body=body
            )
        except openai.BadRequestError as exc:
            results["bad"].append((param, exc.status_code, exc.body.get("param")))
            return
        results["bad"].append((param, 200, None))

    def extreme(body) -> None:
        answer = client.chat.completions.create(model="base", messages=HELLO, max_tokens=8, **body)
        results["extreme"].append([c.finish_reason for c in answer.choices])

    def good(job) -> None:
        results["innocent"].append((job, greedy(bot, *job)))

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(good, job) for job in innocent]
        futures += [pool.submit(bad, case) for case in BAD]
        futures += [pool.submit(extreme, body) for body in EXTREME]
        for future in futures:
            future.result()
    assert sorted(results["bad"]) == sorted((p, 400, p) for _, p in BAD)
    assert len(results["extreme"]) == len(EXTREME)
    assert all(reason == "length" for reasons in results["extreme"] for reason in reasons)
    assert len(results["innocent"]) == 16
    assert all(text == alone[job] for job, text in results["innocent"])


def test_malformed_bodies_get_json_4xx_answers_and_the_server_keeps_serving(tiny, servers):
    server = servers(f"--base={tiny.base}", "--model-name=m", "--max-body-bytes=300000")
    bodies = [
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than any parser's stack
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e999}',
        b'\xff\xfe{"model": "m"}',
        b"[1, 2]",
        b"",
        b'{"model": ["m"], "messages": [{"role": "user", "content": "hi"}]}',
        b'{"model": "m", "messages": [{"role": "user", "content": {"a": "b"}}]}',
    ]
    before = server.metric("finetune_requests_total", code="400")
    for body in bodies:
        response = server.client.post("/v1/chat/completions", content=body)
        assert response.status_code == 400, (body[:40], response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"], error
        assert "Traceback" not in response.text
    assert server.metric("finetune_requests_total", code="400") - before == len(bodies)

    # Over the limit without a Content-Length (chunked): refused once read that far.
    def chunks():
        for _ in range(40):
            yield b" " * 10_000

    over = server.client.post("/v1/chat/completions", content=chunks())
    assert over.status_code == 413 and over.json()["error"]["code"] == "body_too_large"
    assert greedy(server, "m", "hello")


def test_a_bundle_missing_or_of_another_revision_keeps_the_server_unready(tiny, servers, tmp_path):
    other = write_bundle(tmp_path / "other.json", system="be brief", revision="0123456789")
    for bundle, reason in (
        (tmp_path / "missing.json", "missing.json"),
        (other, "revision 0123456789's, this server is c21b8e0f44"),
    ):
        server = servers(
            f"--base={tiny.base}",
            "--model-name=m",
            f"--bundle={bundle}",
            "--revision=c21b8e0f44",
            wait_ready=False,
        )
        deadline = time.monotonic() + 60
        while (ready := server.client.get("/ready")).json()["reason"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert ready.status_code == 503 and reason in ready.json()["reason"], ready.json()
        refused = server.client.post("/v1/chat/completions", json={"model": "m", "messages": HELLO})
        assert refused.status_code == 503


def test_the_runtime_adapter_api_is_off_unless_enabled(tiny, servers):
    server = servers(f"--base={tiny.base}", f"--adapter={tiny.adapters[0]}", "--model-name=bot")
    load = {
        "lora_name": "other",
        "lora_path": str(tiny.adapters[1]),
        "digest": artifact_digest(tiny.adapters[1]),
    }
    assert server.client.post("/v1/load_lora_adapter", json=load).status_code == 404
    assert (
        server.client.post("/v1/unload_lora_adapter", json={"lora_name": "bot"}).status_code == 404
    )
    assert {m["id"] for m in server.client.get("/v1/models").json()["data"]} == {"bot", "base"}


def test_runtime_adapter_calls_never_change_the_served_model(tiny, bot, tmp_path):
    models = lambda: {m["id"] for m in bot.client.get("/v1/models").json()["data"]}  # noqa: E731
    served = models()
    before = {(m, p): greedy(bot, m, p) for m in ("bot", "base") for p in PROMPTS[:2]}
    misfit = tiny.root / "misfit"  # adapter 1 with a LoRA A matrix of the wrong width
    shutil.copytree(tiny.adapters[1], misfit, dirs_exist_ok=True)
    weights = load_file(misfit / "adapter_model.safetensors")
    key = next(k for k in weights if "lora_A" in k)
    weights[key] = weights[key][:, :-1].contiguous()
    save_file(weights, misfit / "adapter_model.safetensors")
    not_adapter = tiny.root / "not-adapter"
    shutil.copytree(tiny.base, not_adapter, dirs_exist_ok=True)
    outside = tmp_path / "outside"
    shutil.copytree(tiny.adapters[1], outside)

    def load(name: str, path, digest: str | None = "auto") -> httpx.Response:
        body = {"lora_name": name, "lora_path": str(path)}
        if digest:
            body["digest"] = artifact_digest(path) if digest == "auto" else digest
        return bot.client.post("/v1/load_lora_adapter", json=body)

    def unload(name: str) -> httpx.Response:
        return bot.client.post("/v1/unload_lora_adapter", json={"lora_name": name})

    calls = [
        (load("bot", tiny.adapters[1]), 400),  # replace the served model
        (load("base", tiny.adapters[1]), 400),
        (unload("bot"), 400),  # unload the served model
        (unload("base"), 400),
        (load("../evil", tiny.adapters[1]), 400),
        (load("x" * 65, tiny.adapters[1]), 400),
        (load("outside", outside), 400),
        (load("escape", f"{tiny.root}/../{outside.parent.name}/outside"), 400),
        (load("notadapter", not_adapter), 400),
        (load("nodigest", tiny.adapters[1], digest=None), 400),
        (load("wrongdigest", tiny.adapters[1], digest="sha256:" + "0" * 64), 400),
        (load("misfit", misfit), 400),  # fails to load: nothing of it stays
        (load("extra", tiny.adapters[2]), 200),
        (load("extra", tiny.adapters[3]), 400),  # replace a loaded adapter
        (unload("extra"), 200),
        (unload("extra"), 404),
        (load("extra", tiny.adapters[2]), 200),
    ]
    assert [r.status_code for r, _ in calls] == [code for _, code in calls], [
        r.text for r, _ in calls
    ]
    for response, code in calls:
        if code != 200:
            assert response.json()["error"]["message"]
    assert models() == served | {"extra"}
    assert greedy(bot, "extra", PROMPTS[0]) != before[("base", PROMPTS[0])]
    after = {(m, p): greedy(bot, m, p) for m in ("bot", "base") for p in PROMPTS[:2]}
    assert after == before
    assert unload("extra").status_code == 200


def stream_chunks(server, body: dict):
    """Yields each parsed SSE chunk of a streamed chat completion."""
    with server.client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                yield json.loads(line[6:])


def test_a_short_request_finishes_while_long_ones_are_still_generating(tiny, servers):
    server = servers(f"--base={tiny.base}", "--model-name=m", "--max-tokens-limit=256")
    long = {"model": "m", "messages": HELLO, "max_tokens": 200, "ignore_eos": True, "stream": True}
    finished: list[str] = []
    started = threading.Event()

    def long_one(i: int) -> None:
        for n, _ in enumerate(stream_chunks(server, long)):
            if n == 3 and i == 0:
                started.set()
        finished.append(f"long-{i}")

    threads = [threading.Thread(target=long_one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    assert started.wait(60)
    assert greedy(server, "m", "refunds take", max_tokens=4)
    finished.append("short")
    for thread in threads:
        thread.join(120)
    assert finished[0] == "short", finished


@pytest.fixture(scope="module")
def slow_base(tmp_path_factory):
    """A wider tiny model: its 230 tokens take seconds, far longer than a client waits below."""
    return build_base(tmp_path_factory.mktemp("slow") / "base", hidden=512, layers=8)


def test_a_client_that_goes_away_stops_its_generation_and_is_counted(slow_base, servers):
    server = servers(f"--base={slow_base}", "--model-name=m", "--max-tokens-limit=256")
    labels = {"model": "m", "adapter": "__base__"}
    body = {"model": "m", "messages": HELLO, "max_tokens": 230, "ignore_eos": True}
    for n, _ in enumerate(stream_chunks(server, {**body, "stream": True})):
        if n == 2:
            break  # the connection is closed here, mid-stream
    with pytest.raises(httpx.ReadTimeout):  # not streamed: the client gives up waiting
        server.client.post("/v1/chat/completions", json=body, timeout=0.3)

    def settled() -> bool:
        return server.metric("finetune_requests_in_flight", **labels) == 0

    deadline = time.monotonic() + 30
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.2)
    codes = {c: server.metric("finetune_requests_total", code=c, **labels) for c in ("200", "499")}
    assert codes == {"200": 0, "499": 2}
    steps = server.metric("finetune_batch_rows_sum")
    time.sleep(1)
    assert server.metric("finetune_batch_rows_sum") == steps, "nothing is generating any more"
    assert server.metric("finetune_generated_tokens_total", **labels) < 230


def test_a_full_queue_answers_429_with_retry_after(tiny, servers):
    server = servers(f"--base={tiny.base}", "--model-name=m", "--max-batch=1", "--max-queue=2")
    body = {"model": "m", "messages": HELLO, "max_tokens": 60, "ignore_eos": True}
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda _: server.client.post("/v1/chat/completions", json=body), range(8))
        )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) >= 3 and codes.count(429) >= 1 and set(codes) <= {200, 429}, codes
    busy = next(r for r in responses if r.status_code == 429)
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["code"] == "queue_full"
    assert server.metric("finetune_requests_total", code="429") == codes.count(429)
    assert server.metric("finetune_queue_depth") == 0


def test_openai_parameters_clients_rely_on(tiny, servers):
    server = servers(f"--base={tiny.base}", "--model-name=m", "--max-tokens-limit=1024")
    client = server.openai()
    # No max_tokens: what the context leaves (vLLM's default), not 16.
    whole = client.chat.completions.create(
        model="m", messages=HELLO, temperature=0, extra_body={"ignore_eos": True}
    )
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage.total_tokens == 256  # the tiny model's context
    capped = client.chat.completions.create(
        model="m", messages=HELLO, temperature=0, max_completion_tokens=5
    )
    assert capped.usage.completion_tokens == 5
    # Content parts and the developer role read as their plain forms do.
    plain = client.chat.completions.create(
        model="m",
        messages=[{"role": "system", "content": "be brief"}, *HELLO],
        max_tokens=8,
        temperature=0,
    )
    parts = client.chat.completions.create(
        model="m",
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "be brief"}]},
            {"role": "user", "content": [{"type": "text", "text": "hello"}]},
        ],
        max_tokens=8,
        temperature=0,
    )
    assert parts.choices[0].message.content == plain.choices[0].message.content
    # Prompt lists and n: one choice each, in order.
    listed = client.completions.create(
        model="m", prompt=PROMPTS[:2], max_tokens=6, temperature=0, n=2
    )
    assert [c.index for c in listed.choices] == [0, 1, 2, 3]
    alone = [server.text("m", p, 6) for p in PROMPTS[:2]]
    assert [c.text for c in listed.choices] == [alone[0], alone[0], alone[1], alone[1]]
    sampled = client.completions.create(
        model="m", prompt="hello", max_tokens=12, temperature=1.5, n=3, seed=7
    )
    assert len({c.text for c in sampled.choices}) > 1, "n choices are sampled apart"


def test_a_stop_string_that_spans_tokens_never_leaks(tiny, servers):
    server = servers(f"--base={tiny.base}", "--model-name=m")
    body = {"model": "m", "messages": HELLO, "max_tokens": 24, "temperature": 0, "stream": True}
    deltas = [c["choices"][0]["delta"].get("content") or "" for c in stream_chunks(server, body)]
    deltas = [d for d in deltas if d]
    text = "".join(deltas)
    # A stop string across the boundary of two streamed tokens, late in the answer.
    boundary = next(
        i
        for i in range(len(deltas) - 1, 0, -1)
        if deltas[i - 1][-1:].isprintable() and deltas[i][:1].isprintable()
    )
    stop = deltas[boundary - 1][-1:] + deltas[boundary][:1]
    expected = text[: text.find(stop)]
    shown = "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in stream_chunks(server, {**body, "stop": [stop]})
    )
    assert shown == expected, (shown, expected, stop)  # not one character of the stop
