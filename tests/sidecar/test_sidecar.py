"""The response checker as a real process in front of a real builtin model server (standing in
for vLLM: an OpenAI-compatible server), through the official OpenAI Python client: answers pass
through unchanged (streams byte for byte), are measured under the builtin server's own metric
names, and an upstream that is down, slow or failing gives OpenAI-shaped errors that are counted
while the checker keeps serving."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest

from tests.cluster.processes import ManagedProcess, free_port, wait_until
from tests.modelserver.conftest import write_bundle

pytestmark = pytest.mark.serve

HELLO = [{"role": "user", "content": "hello"}]


class Checker:
    """python -m ftrelease.sidecar as a process."""

    def __init__(self, workdir, upstream: str, *args: str) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            "sidecar",
            [
                sys.executable,
                "-m",
                "ftrelease.sidecar",
                f"--port={self.port}",
                f"--admin-port={self.admin_port}",
                f"--upstream={upstream}",
                *args,
            ],
            workdir / f"sidecar-{self.port}.log",
        )
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def start(self) -> Checker:
        self.process.start()
        wait_until("sidecar", lambda: self._up(), 60)
        return self

    def _up(self) -> bool:
        self.process.check_running()
        try:
            return self.client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="unused", max_retries=0)

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        return sum(
            s.value
            for family in text_string_to_metric_families(self.client.get("/metrics").text)
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def stop(self) -> None:
        self.client.close()
        self.process.stop()


@pytest.fixture
def checker(tmp_path):
    started: list[Checker] = []

    def start(upstream: str, *args: str) -> Checker:
        started.append(Checker(tmp_path, upstream, *args).start())
        return started[-1]

    yield start
    for one in started:
        one.stop()


@pytest.fixture(scope="module")
def upstream(tiny, servers):
    """A real builtin server with the adapter as "bot", its own checks beside the point: the
    sidecar measures what passes through."""
    return servers(f"--base={tiny.base}", f"--adapter={tiny.adapters[0]}", "--model-name=bot")


def test_answers_pass_through_unchanged_and_are_measured_as_the_builtin_server_does(
    upstream, checker, tmp_path
):
    bundle = write_bundle(
        tmp_path / "bundle.json", {"type": "json"}, system="Answer in JSON.", revision="r1"
    )
    sidecar = checker(
        upstream.url,
        "--model-name=bot",
        f"--bundle={bundle}",
        "--release=bot",
        "--revision=r1",
        "--sample-rate=1",
    )
    assert sidecar.client.get("/ready").json() == {"ready": True, "reason": "ready"}
    via = sidecar.openai()
    answer = via.chat.completions.create(model="bot", messages=HELLO, max_tokens=8, temperature=0)
    # The bundle's system prompt was put first: the same answer as asking with it directly.
    direct = upstream.openai().chat.completions.create(
        model="bot",
        messages=[{"role": "system", "content": "Answer in JSON."}, *HELLO],
        max_tokens=8,
        temperature=0,
    )
    assert answer.choices[0].message.content == direct.choices[0].message.content
    assert answer.usage.prompt_tokens == direct.usage.prompt_tokens
    labels = {"release": "bot", "revision": "r1", "model": "bot", "adapter": "bot"}
    assert sidecar.metric("finetune_requests_total", code="200", **labels) == 1
    assert sidecar.metric("finetune_generated_tokens_total", **labels) == 8
    assert sidecar.metric("finetune_finish_reasons_total", reason="length", **labels) == 1
    assert sidecar.metric("finetune_format_checked_total", **labels) == 0, "cut off: not judged"
    # A whole answer is judged: not JSON, so format-invalid.
    stop = direct.choices[0].message.content[-2:]
    whole = via.chat.completions.create(
        model="bot", messages=HELLO, max_tokens=8, temperature=0, stop=[stop]
    )
    assert whole.choices[0].finish_reason == "stop"
    assert sidecar.metric("finetune_format_checked_total", **labels) == 1
    assert sidecar.metric("finetune_format_invalid_total", **labels) == 1
    [sample] = httpx.get(f"http://127.0.0.1:{sidecar.admin_port}/v1/samples?limit=1").json()["data"]
    assert sample["messages"] == HELLO, "what the client sent, not the bundle's prompt"
    flagged = httpx.get(f"http://127.0.0.1:{sidecar.admin_port}/v1/samples?flagged=true")
    [invalid] = flagged.json()["data"]  # the cut-off answer was not judged, so not flagged
    assert invalid["flags"] == ["format_invalid"] and invalid["response"] == whole_text(whole)
    base = {"model": "base", "adapter": "__base__"}
    via.completions.create(model="base", prompt="hello", max_tokens=3)
    assert sidecar.metric("finetune_requests_total", code="200", **base) == 1


def whole_text(completion) -> str:
    return completion.choices[0].message.content


def stream_bytes(url: str, body: dict) -> bytes:
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
        return b"".join(response.iter_raw())


def test_a_stream_passes_through_as_the_upstream_sends_it(upstream, checker):
    sidecar = checker(upstream.url, "--model-name=bot")
    body = {"model": "bot", "messages": HELLO, "max_tokens": 12, "temperature": 0, "stream": True}
    direct, via = stream_bytes(upstream.url, body), stream_bytes(sidecar.url, body)
    # Each response has its own id and time; everything else is the same, byte for byte.
    unique = re.compile(rb'"(id|created)": ?("[^"]*"|\d+)')
    assert unique.sub(b"", via) == unique.sub(b"", direct)
    assert via.endswith(b"data: [DONE]\n\n")
    chunks = [json.loads(line[6:]) for line in via.split(b"\n\n") if line.startswith(b"data: {")]
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert sidecar.metric("finetune_generated_tokens_total", model="bot") == len(
        [c for c in chunks if c["choices"][0]["delta"].get("content")]
    )
    assert streamed and sidecar.metric("finetune_time_to_first_token_seconds_count") == 1


class Canned(BaseHTTPRequestHandler):
    """An upstream that sends one fixed event stream in awkward pieces (split inside lines and
    inside a UTF-8 character), or answers slowly, or with a 500 that is not JSON."""

    STREAM = (
        'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":'
        '{"content":"{\\"ok\\": true, \\"note\\": \\"caf\u00e9\\"}"},"finish_reason":null}]}\n\n'
        'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},'
        '"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":7}}\n\n'
        "data: [DONE]\n\n"
    ).encode()
    mode = "stream"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if Canned.mode == "slow":
            time.sleep(5)
        if Canned.mode == "broken":
            self.send_response(500)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"upstream exploded")
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for cut in range(0, len(self.STREAM), 37):
            self.wfile.write(self.STREAM[cut : cut + 37])
            self.wfile.flush()
            time.sleep(0.005)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def canned():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Canned.mode = "stream"
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_stream_bytes_in_any_pieces_are_relayed_exactly_and_read_right(canned, checker, tmp_path):
    bundle = write_bundle(tmp_path / "b.json", {"type": "json"})
    sidecar = checker(canned, "--model-name=bot", f"--bundle={bundle}")
    body = {"model": "bot", "messages": HELLO, "stream": True}
    assert stream_bytes(sidecar.url, body) == Canned.STREAM
    labels = {"model": "bot"}
    assert sidecar.metric("finetune_generated_tokens_total", **labels) == 7  # from usage
    assert sidecar.metric("finetune_prompt_tokens_total", **labels) == 3
    assert sidecar.metric("finetune_format_checked_total", **labels) == 1
    assert sidecar.metric("finetune_format_invalid_total", **labels) == 0


def test_an_upstream_down_slow_or_failing_gives_openai_errors_counted(canned, checker, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sidecar = checker(dead, "--model-name=bot")
    client = sidecar.openai()
    with pytest.raises(openai.APIStatusError) as down:
        client.chat.completions.create(model="bot", messages=HELLO)
    assert down.value.status_code == 502 and down.value.body["code"] == "upstream_unavailable"
    ready = sidecar.client.get("/ready")
    assert ready.status_code == 503 and "not reachable" in ready.json()["reason"]

    slow = checker(canned, "--model-name=bot", "--timeout=1")
    Canned.mode = "slow"
    with pytest.raises(openai.APIStatusError) as late:
        slow.openai().chat.completions.create(model="bot", messages=HELLO)
    assert late.value.status_code == 504 and late.value.body["code"] == "upstream_timeout"
    Canned.mode = "broken"
    with pytest.raises(openai.InternalServerError) as broken:
        slow.openai().chat.completions.create(model="bot", messages=HELLO)
    assert broken.value.body["code"] == "upstream_error"
    assert "upstream exploded" in broken.value.body["message"]
    counted = {c: slow.metric("finetune_requests_total", code=c) for c in ("504", "500")}
    assert counted == {"504": 1, "500": 1}
    assert sidecar.metric("finetune_requests_total", code="502") == 1
    # And it keeps serving.
    Canned.mode = "stream"
    assert stream_bytes(slow.url, {"model": "bot", "messages": HELLO, "stream": True}) == (
        Canned.STREAM
    )
