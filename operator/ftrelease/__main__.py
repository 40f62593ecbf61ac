"""`python -m ftrelease` / `finetune-release-operator`: runs the operator."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys

from .operator.config import CONFIG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="finetune-release-operator",
        description="Rolls out FineTuneReleases: stages, judgment, promotion and rollback.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--resync",
        type=float,
        default=CONFIG.resync,
        help="seconds between re-deciding every release from the cache, with no API reads; "
        "watch events and each release's clocks move rollouts (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=CONFIG.workers,
        help="releases reconciled at once (default %(default)s)",
    )
    parser.add_argument(
        "--lease-namespace",
        default=CONFIG.lease_namespace,
        help="namespace of the leader-election Lease (default %(default)s)",
    )
    parser.add_argument("--lease-name", default=CONFIG.lease_name)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=CONFIG.metrics_port,
        help="port for /metrics; 0 disables (default %(default)s)",
    )
    parser.add_argument("--metrics-address", default=CONFIG.metrics_address)
    parser.add_argument(
        "--liveness-port",
        type=int,
        default=CONFIG.liveness_port,
        help="port for /healthz; 0 disables (default %(default)s)",
    )
    parser.add_argument(
        "--prometheus-url",
        default=CONFIG.prometheus_url,
        help="Prometheus to judge stages with (e.g. http://prometheus:9090); without it there "
        "is no analysis and stages complete on their clocks",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    # `kill -USR1 <pid>` prints every thread's stack: how to see where a stuck operator waits.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    CONFIG.namespaces = args.namespace
    CONFIG.resync = args.resync
    CONFIG.workers = args.workers
    CONFIG.lease_namespace = args.lease_namespace
    CONFIG.lease_name = args.lease_name
    CONFIG.metrics_port = args.metrics_port
    CONFIG.metrics_address = args.metrics_address
    CONFIG.liveness_port = args.liveness_port
    CONFIG.prometheus_url = args.prometheus_url
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # a line per watch event and per lease renewal hides what matters
        for chatty in ("kopf.objects", "leaderelection", "aiohttp.access"):
            logging.getLogger(chatty).setLevel(logging.WARNING)

    import kopf

    from .operator import handlers  # noqa: F401  (registers the handlers)

    liveness = (
        f"http://{args.metrics_address}:{args.liveness_port}/healthz"
        if args.liveness_port
        else None
    )
    kopf.run(
        standalone=True,  # no kopf peering: our Lease says which replica writes
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
