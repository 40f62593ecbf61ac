"""bench/sidecar: what the response checker costs in front of a runtime, measured against calling
the runtime directly. The upstream is the builtin model server on a small random model (real
processes, CPU here); the checker runs as its own process, as beside vLLM.

- latency: `--requests` sequential chat requests of `--max-tokens` tokens, direct and through
  the checker alternately; the added latency at p50 and p99 (through minus direct).
- throughput: `--concurrency` clients for `--requests` requests each way; through / direct.
Both non-streaming and streaming (a streamed request ends at its last byte).

Goals (the response-checker issue): added latency p50 at most 2 ms and throughput at least
0.9x direct, non-streaming. Prints the figures; never asserts (shared machines are noisy).

  python bench/sidecar/run.py [--requests 200] [--concurrency 8] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.cluster.processes import ManagedProcess, free_port, wait_until
from tests.modelserver.conftest import ModelServer
from tests.tiny_models import build_base


def checker(root: Path, upstream: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        "sidecar",
        [
            sys.executable,
            "-m",
            "ftrelease.sidecar",
            f"--port={port}",
            f"--upstream={upstream}",
            "--model-name=m",
            "--artifact=merged",
        ],
        root / "sidecar.log",
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    wait_until("sidecar", lambda: httpx.get(f"{url}/ready").status_code == 200, 60)
    return process, url


def one(client: httpx.Client, url: str, body: dict) -> float:
    began = time.perf_counter()
    if body.get("stream"):
        with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            for _ in response.iter_raw():
                pass
    else:
        client.post(f"{url}/v1/chat/completions", json=body).raise_for_status()
    return time.perf_counter() - began


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-sidecar-"))
    base = build_base(root / "base", hidden=args.hidden)
    server = ModelServer(root, [f"--merged={base}", "--model-name=m", "--max-batch=16"]).start()
    process, via = checker(root, server.url)
    direct = server.url
    print(
        f"upstream: builtin server, Llama-style hidden {args.hidden}; chat, {args.max_tokens} "
        f"tokens, greedy; {args.requests} requests each way"
    )
    print(
        "| mode | direct p50 (ms) | through p50 (ms) | added p50 (ms) | added p99 (ms) | "
        "throughput through / direct |"
    )
    print("|---|---|---|---|---|---|")
    try:
        for stream in (False, True):
            body = {
                "model": "m",
                "messages": [{"role": "user", "content": "hello"}],
                "max_tokens": args.max_tokens,
                "temperature": 0,
                "ignore_eos": True,
                "stream": stream,
            }
            with httpx.Client(timeout=60) as client:
                for _ in range(10):  # warm up both paths
                    one(client, direct, body), one(client, via, body)
                pairs = [
                    (one(client, direct, body), one(client, via, body))
                    for _ in range(args.requests)
                ]
            lone = [d for d, _ in pairs]
            through = [v for _, v in pairs]
            rates = {}
            for name, url in (("direct", direct), ("through", via)):
                with (
                    httpx.Client(timeout=60) as client,
                    ThreadPoolExecutor(args.concurrency) as pool,
                ):
                    began = time.perf_counter()
                    jobs = [(client, url, body)] * args.requests
                    list(pool.map(lambda job: one(*job), jobs))
                    rates[name] = args.requests / (time.perf_counter() - began)
            added50 = statistics.median(through) - statistics.median(lone)
            added99 = percentile(through, 0.99) - percentile(lone, 0.99)
            print(
                f"| {'streaming' if stream else 'non-streaming'} "
                f"| {statistics.median(lone) * 1000:.1f} | {statistics.median(through) * 1000:.1f} "
                f"| {added50 * 1000:.2f} | {added99 * 1000:.2f} "
                f"| {rates['through'] / rates['direct']:.2f}x ({rates['through']:.0f} / "
                f"{rates['direct']:.0f} req/s) |",
                flush=True,
            )
    finally:
        process.stop()
        server.stop()
    print("goals, non-streaming: added p50 <= 2 ms, throughput >= 0.9x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
