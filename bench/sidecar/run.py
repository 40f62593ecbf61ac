"""bench/sidecar: what the response checker costs in front of a runtime, measured against calling
the runtime directly. The upstream is the builtin model server on a small random model (real
processes, CPU here); the checker runs as its own process, as beside vLLM.

- latency: `--requests` sequential chat requests of `--max-tokens` tokens, direct and through
  the checker alternately; the added latency at p50 (the median of each pair's difference, which
  cancels the machine's drift) and at p99 (through's p99 minus direct's).
- throughput: `--concurrency` clients, `--load-requests` requests each way in each of `--rounds`
  alternating rounds; through / direct over all rounds.
- the checker's own CPU time per request, from /proc, over the throughput run.
Both non-streaming and streaming (a streamed request ends at its last byte). The load comes from
one asyncio client on aiohttp's pool, so that on a small machine the load generator takes as
little of the CPU that the server and the checker share as it can.

Goals (the response-checker issue): added latency p50 at most 2 ms and throughput at least
0.9x direct, non-streaming. Prints the figures; never asserts (shared machines are noisy).

  python bench/sidecar/run.py [--requests 200] [--concurrency 8] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from httpx_aiohttp import AiohttpTransport

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


async def one(client: httpx.AsyncClient, url: str, body: dict) -> float:
    began = time.perf_counter()
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for _ in response.aiter_raw():
            pass
    return time.perf_counter() - began


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(direct: str, via: str, checker_pid: int, body: dict, args) -> dict:
    """Latency pairs (sequential, alternating), then each way's throughput under load."""
    async with httpx.AsyncClient(timeout=60, transport=AiohttpTransport()) as client:
        for _ in range(10):  # warm up both paths
            await one(client, direct, body), await one(client, via, body)
        pairs = [
            (await one(client, direct, body), await one(client, via, body))
            for _ in range(args.requests)
        ]
        share = args.load_requests // args.concurrency
        seconds = {"direct": 0.0, "through": 0.0}
        cpu = 0.0
        for _ in range(args.rounds):  # alternating rounds, so that drift hits both ways alike
            for name, url in (("direct", direct), ("through", via)):

                async def client_loop(url: str = url) -> None:
                    for _ in range(share):
                        await one(client, url, body)

                cpu_before, began = cpu_seconds(checker_pid), time.perf_counter()
                await asyncio.gather(*(client_loop() for _ in range(args.concurrency)))
                seconds[name] += time.perf_counter() - began
                if name == "through":
                    cpu += cpu_seconds(checker_pid) - cpu_before
        done = share * args.concurrency * args.rounds
        rates = {name: done / spent for name, spent in seconds.items()}
    return {"pairs": pairs, "rates": rates, "checker_cpu": cpu / done}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--load-requests", type=int, default=800, help="per round and way")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument(
        "--shared-cpus",
        action="store_true",
        help="let the upstream share every CPU with the checker and the load instead of giving "
        "it one of its own",
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-sidecar-"))
    base = build_base(root / "base", hidden=args.hidden)
    cpus = sorted(os.sched_getaffinity(0))
    apart = not args.shared_cpus and len(cpus) >= 2
    placement = "the upstream, the checker and the load share every CPU"
    if apart:
        # A GPU runtime's model work is not on the checker's CPU: the upstream gets a CPU of its
        # own, so that the checker's cost shows as latency and throughput, not as CPU taken
        # from a CPU-bound model. Processes inherit the CPUs they start on (and size their
        # thread pools by them), so each is started from where it is to run.
        os.sched_setaffinity(0, {cpus[0]})
        placement = f"the upstream on CPU {cpus[0]}; the checker and the load on {cpus[1:]}"
    server = ModelServer(root, [f"--merged={base}", "--model-name=m", "--max-batch=16"]).start()
    if apart:
        os.sched_setaffinity(0, set(cpus[1:]))
    process, via = checker(root, server.url)
    direct = server.url
    print(
        f"upstream: builtin server, Llama-style hidden {args.hidden}; chat, {args.max_tokens} "
        f"tokens, greedy; latency: {args.requests} pairs; throughput: {args.concurrency} "
        f"clients, {args.rounds} rounds of {args.load_requests} each way; {placement}"
    )
    print(
        "| mode | direct p50 (ms) | through p50 (ms) | added p50 (ms) | added p99 (ms) | "
        "throughput through / direct | checker CPU per request (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
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
            figures = asyncio.run(measure(direct, via, process.pid, body, args))
            lone = [d for d, _ in figures["pairs"]]
            through = [v for _, v in figures["pairs"]]
            rates = figures["rates"]
            added50 = statistics.median(v - d for d, v in figures["pairs"])
            added99 = percentile(through, 0.99) - percentile(lone, 0.99)
            print(
                f"| {'streaming' if stream else 'non-streaming'} "
                f"| {statistics.median(lone) * 1000:.1f} | {statistics.median(through) * 1000:.1f} "
                f"| {added50 * 1000:.2f} | {added99 * 1000:.2f} "
                f"| {rates['through'] / rates['direct']:.2f}x ({rates['through']:.0f} / "
                f"{rates['direct']:.0f} req/s) | {figures['checker_cpu'] * 1000:.2f} |",
                flush=True,
            )
    finally:
        process.stop()
        server.stop()
    print("goals, non-streaming: added p50 <= 2 ms, throughput >= 0.9x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
