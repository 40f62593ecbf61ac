"""bench/serve: generated tokens per second of the builtin model server, real processes on a
small random model (CPU here), for 16 concurrent requests:

  single  - all 16 on one adapter
  mixed   - 2 on each of 8 adapters, mixed-adapter batching (one forward pass for all)
  serial  - the same 16 on 8 adapters, served one adapter at a time (--no-mixed-batching)

and head-of-line blocking: the latency of a short request (8 tokens) while 8 long ones (200
tokens each) are generating, as a ratio to its latency alone. With continuous batching the
short request joins the running batch at the next decoding step and leaves it when done.

Goals: mixed >= 0.8x single and >= 3x serial (issue: builtin model server); head-of-line
ratio <= 3x (issue: the builtin server, safe in front of real traffic). Prints the figures and
the ratios; never asserts (shared machines are noisy).

  python bench/serve/run.py [--rounds 5] [--max-tokens 64] [--hidden 256] [--layers 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ftrelease.checks.digest import artifact_digest

from tests.modelserver.conftest import ModelServer
from tests.tiny_models import build_adapter, build_base

PROMPTS = ["the support assistant", "refunds take", "hello, how can", "please return the"]


def tokens_per_second(server: ModelServer, jobs: list[tuple[str, str]], max_tokens: int) -> float:
    def one(job: tuple[str, str]) -> int:
        body = server.complete(job[0], job[1], max_tokens, ignore_eos=True)
        return body["usage"]["completion_tokens"]

    start = time.perf_counter()
    with ThreadPoolExecutor(len(jobs)) as pool:
        tokens = sum(pool.map(one, jobs))
    return tokens / (time.perf_counter() - start)


def short_latency(server: ModelServer, long_ones: int) -> float:
    """Seconds for one 8-token request while `long_ones` 200-token requests generate."""
    started = threading.Event()

    def long() -> None:
        body = {
            "model": "a0",
            "prompt": PROMPTS[0],
            "max_tokens": 200,
            "ignore_eos": True,
            "stream": True,
        }
        with server.client.stream("POST", "/v1/completions", json=body) as response:
            for n, _ in enumerate(response.iter_lines()):
                if n == 4:
                    started.set()

    threads = [threading.Thread(target=long) for _ in range(long_ones)]
    for thread in threads:
        thread.start()
    if long_ones:
        started.wait(60)
        time.sleep(0.2)  # every long one is in the batch
    began = time.perf_counter()
    server.complete("a1", PROMPTS[1], 8, ignore_eos=True)
    took = time.perf_counter() - began
    for thread in threads:
        thread.join()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    base = build_base(root / "base", hidden=args.hidden, layers=args.layers)
    adapters = [build_adapter(base, root / f"a{i}", seed=i + 1) for i in range(8)]
    single = [("a0", PROMPTS[i % 4]) for i in range(16)]
    spread = [(f"a{i % 8}", PROMPTS[i % 4]) for i in range(16)]

    results: dict[str, list[float]] = {"single": [], "mixed": [], "serial": []}
    blocking: dict[str, list[float]] = {"alone": [], "behind long ones": []}
    servers = {}
    for name, extra in (("mixed", []), ("serial", ["--no-mixed-batching"])):
        server = ModelServer(
            root,
            [
                f"--base={base}",
                f"--adapter={adapters[0]}",
                "--model-name=a0",
                "--max-batch=16",
                "--batch-wait-ms=20",
                "--enable-runtime-lora",
                f"--lora-root={root}",
                *extra,
            ],
        ).start()
        for i, path in enumerate(adapters[1:], start=1):
            load = {"lora_name": f"a{i}", "lora_path": str(path), "digest": artifact_digest(path)}
            server.client.post("/v1/load_lora_adapter", json=load).raise_for_status()
        servers[name] = server
    try:
        for server in servers.values():  # warm up
            tokens_per_second(server, spread, 8)
        for _ in range(args.rounds):
            results["single"].append(tokens_per_second(servers["mixed"], single, args.max_tokens))
            results["mixed"].append(tokens_per_second(servers["mixed"], spread, args.max_tokens))
            results["serial"].append(tokens_per_second(servers["serial"], spread, args.max_tokens))
            blocking["alone"].append(short_latency(servers["mixed"], 0))
            blocking["behind long ones"].append(short_latency(servers["mixed"], 8))
    finally:
        for server in servers.values():
            server.stop()

    median = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"model: Llama-style, hidden {args.hidden}, {args.layers} layers, LoRA r=8 on q/v/o; "
        f"16 concurrent requests x {args.max_tokens} tokens, greedy; {args.rounds} rounds, median"
    )
    print("| case | generated tokens/s (median) | all rounds |")
    print("|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {median[name]:.0f} | {', '.join(f'{v:.0f}' for v in values)} |")
    print(f"mixed / single = {median['mixed'] / median['single']:.2f}x (goal >= 0.8x)")
    print(f"mixed / serial = {median['mixed'] / median['serial']:.2f}x (goal >= 3x)")
    latency = {k: statistics.median(v) for k, v in blocking.items()}
    print("| short request (8 tokens) | latency s (median) | all rounds |")
    print("|---|---|---|")
    for name, values in blocking.items():
        print(f"| {name} | {latency[name]:.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    ratio = latency["behind long ones"] / latency["alone"]
    print(f"head-of-line: behind 8 long ones / alone = {ratio:.2f}x (goal <= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
