"""`python -m ftrelease.sidecar`: the response checker in front of an OpenAI-compatible server."""

from __future__ import annotations

import argparse
import sys

from ftrelease.checks.options import add_check_options, configure_logging

from .app import Sidecar, SidecarConfig, serve_forever


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ftrelease.sidecar", description=__doc__)
    add_check_options(p)
    p.add_argument("--upstream", required=True, help="the runtime's base URL")
    p.add_argument("--artifact", choices=("adapter", "merged"), default="adapter")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds an answer may take")
    p.add_argument("--connect-timeout", type=float, default=5.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    configure_logging()
    serve_forever(Sidecar(SidecarConfig(**args)), host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
