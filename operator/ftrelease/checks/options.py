"""The command-line options every runtime's checker takes (the builtin server, the response
checker), so the operator passes the same ones to both."""

from __future__ import annotations

import argparse
import logging


def add_check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="the serving port clients call")
    p.add_argument("--model-name", required=True, help='the "model" clients send')
    p.add_argument("--release", default="", help="metric label: the FineTuneRelease")
    p.add_argument("--revision", default="", help="metric label: the bundle revision")
    p.add_argument(
        "--bundle", help="the revision's bundle.json: system prompt, output format, escalation"
    )
    p.add_argument("--admin-port", type=int, help="review samples on this port (default: none)")
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


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
