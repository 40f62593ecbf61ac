"""`python -m ftrelease.modelserver`: the builtin model server."""

from __future__ import annotations

import argparse
import sys

from ftrelease.checks.options import add_check_options, configure_logging

from .app import serve_forever
from .server import Server, ServerConfig


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ftrelease.modelserver", description=__doc__)
    add_check_options(p)
    p.add_argument("--base", help="base model directory (Hugging Face format)")
    p.add_argument("--adapter", help="PEFT LoRA adapter directory, served as --model-name")
    p.add_argument("--adapter-digest", help="expected sha256:<hex> of the adapter's files")
    p.add_argument("--merged", help="merged model directory, served as --model-name")
    p.add_argument("--merged-digest", help="expected sha256:<hex> of the merged model's files")
    p.add_argument("--base-name", default="base", help="name the base model is served under")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument(
        "--no-mixed-batching",
        dest="mixed_batching",
        action="store_false",
        help="run each adapter's requests on their own (a baseline for benchmarks)",
    )
    p.add_argument("--max-tokens-limit", type=int, default=1024)
    p.add_argument(
        "--max-queue",
        type=int,
        default=256,
        help="requests that may wait for the batch; past it, 429 with Retry-After",
    )
    p.add_argument(
        "--enable-runtime-lora",
        action="store_true",
        help="vLLM's /v1/load_lora_adapter and /v1/unload_lora_adapter (off by default)",
    )
    p.add_argument("--lora-root", help="the only directory runtime adapters may be loaded from")
    p.add_argument(
        "--health-when-loaded",
        action="store_true",
        help="/health answers 503 until the model is loaded, as vLLM's (for the vLLM stand-in)",
    )
    p.add_argument(
        "--fault-error-rate",
        type=float,
        default=0.0,
        help="fault injection (drills, tests): answer this fraction of requests with 500",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    configure_logging()
    serve_forever(Server(ServerConfig(**args)), host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
