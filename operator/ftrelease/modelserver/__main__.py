"""`python -m ftrelease.modelserver`: the builtin model server."""

from __future__ import annotations

import argparse
import logging
import sys

from .app import serve_forever
from .server import Server, ServerConfig


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ftrelease.modelserver", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model-name", required=True, help='the "model" clients send')
    p.add_argument("--base", help="base model directory (Hugging Face format)")
    p.add_argument("--adapter", help="PEFT LoRA adapter directory, served as --model-name")
    p.add_argument("--adapter-digest", help="expected sha256:<hex> of the adapter's files")
    p.add_argument("--merged", help="merged model directory, served as --model-name")
    p.add_argument("--merged-digest", help="expected sha256:<hex> of the merged model's files")
    p.add_argument("--base-name", default="base", help="name the base model is served under")
    p.add_argument("--release", default="", help="metric label: the FineTuneRelease")
    p.add_argument("--revision", default="", help="metric label: the bundle revision")
    p.add_argument("--bundle", help="bundle.json with the system prompt and output format")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument(
        "--no-mixed-batching",
        dest="mixed_batching",
        action="store_false",
        help="run each adapter's requests on their own (a baseline for benchmarks)",
    )
    p.add_argument("--max-tokens-limit", type=int, default=1024)
    p.add_argument("--max-body-bytes", type=int, default=1 << 20)
    p.add_argument(
        "--max-queue",
        type=int,
        default=256,
        help="requests that may wait for the batch; past it, 429 with Retry-After",
    )
    p.add_argument("--admin-port", type=int, help="review samples on this port (default: none)")
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
    p.add_argument("--sample-rate", type=float, default=0.01, help="fraction of pairs kept")
    p.add_argument("--sample-capacity", type=int, default=256)
    p.add_argument("--redact", action="append", default=[], help="regex redacted in samples")
    p.add_argument(
        "--refusal-pattern",
        action="append",
        dest="refusal_patterns",
        help="regex counting a response as a refusal (default: a built-in set)",
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
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve_forever(Server(ServerConfig(**args)), host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
