"""`python -m ftrelease.sidecar`: the response checker in front of an OpenAI-compatible server."""

from __future__ import annotations

import argparse
import logging
import sys

from .app import Sidecar, SidecarConfig, serve_forever


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ftrelease.sidecar", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="the serving port clients call")
    p.add_argument("--upstream", required=True, help="the runtime's base URL")
    p.add_argument("--model-name", required=True, help="the fine-tune, as clients ask for it")
    p.add_argument("--artifact", choices=("adapter", "merged"), default="adapter")
    p.add_argument("--release", default="", help="metric label: the FineTuneRelease")
    p.add_argument("--revision", default="", help="metric label: the bundle revision")
    p.add_argument("--bundle", help="bundle.json with the system prompt, format and escalation")
    p.add_argument("--admin-port", type=int, help="review samples on this port (default: none)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds an answer may take")
    p.add_argument("--connect-timeout", type=float, default=5.0)
    p.add_argument("--max-body-bytes", type=int, default=1 << 20)
    p.add_argument("--sample-rate", type=float, default=0.01, help="fraction of answers kept")
    p.add_argument("--sample-capacity", type=int, default=256)
    p.add_argument("--redact", action="append", default=[], help="regex redacted in samples")
    p.add_argument(
        "--refusal-pattern",
        action="append",
        dest="refusal_patterns",
        help="regex counting an answer as a refusal (default: a built-in set)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per proxied request
    serve_forever(Sidecar(SidecarConfig(**args)), host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
