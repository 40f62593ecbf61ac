"""`python -m tests.cluster up|down|status`: the local control plane for humans.

`up` builds (or reuses) the binaries, starts the control plane detached, installs the CRDs and
prints how to point kubectl at it; its processes keep running until `down` stops them by pid.
State lives in .cluster/ at the repository root."""

from __future__ import annotations

import argparse
import json
import sys

from .localcluster import REPO_ROOT, LocalCluster, build_binaries
from .processes import pid_alive, stop_pid

STATE_DIR = REPO_ROOT / ".cluster"
STATE_FILE = STATE_DIR / "state.json"


def _load_state() -> dict | None:
    if not STATE_FILE.exists():
        return None
    return json.loads(STATE_FILE.read_text())


def _running(state: dict) -> bool:
    return all(pid_alive(pid) for pid in state["pids"].values())


def up(args: argparse.Namespace) -> int:
    state = _load_state()
    if state and _running(state):
        print(f"already running; export KUBECONFIG={state['kubeconfig']}")
        return 0
    if state:
        down(args)
    bin_dir = build_binaries()
    cluster = LocalCluster(
        bin_dir=bin_dir, workdir=STATE_DIR / "control-plane", node_count=args.nodes
    )
    cluster.start()
    STATE_FILE.write_text(json.dumps(cluster.state(), indent=2))
    print(
        f"control plane up at {cluster.server} with {args.nodes} KWOK nodes; logs in {cluster.workdir / 'logs'}"
    )
    print("point kubectl at it:")
    print(f"  export KUBECONFIG={cluster.kubeconfig}")
    print(f"  export PATH={bin_dir}:$PATH   # kubectl {bin_dir.name} build")
    print("  kubectl get nodes,crds")
    print("stop it with: python -m tests.cluster down")
    return 0


def down(_: argparse.Namespace) -> int:
    state = _load_state()
    if state is None:
        print("not running")
        return 0
    # Reverse start order: KWOK and the controllers before the apiserver, etcd last.
    for name, pid in reversed(list(state["pids"].items())):
        stop_pid(pid)
        print(f"stopped {name} (pid {pid})")
    STATE_FILE.unlink()
    return 0


def status(_: argparse.Namespace) -> int:
    state = _load_state()
    if state is None:
        print("not running")
        return 1
    for name, pid in state["pids"].items():
        print(f"{name:20} pid {pid:<8} {'running' if pid_alive(pid) else 'STOPPED'}")
    print(f"export KUBECONFIG={state['kubeconfig']}")
    return 0 if _running(state) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the control plane detached and print the kubeconfig")
    p_up.add_argument("--nodes", type=int, default=2, help="fake nodes to register (default 2)")
    p_up.set_defaults(func=up)
    sub.add_parser("down", help="stop what `up` started").set_defaults(func=down)
    sub.add_parser("status", help="show the processes").set_defaults(func=status)
    args = parser.parse_args(argv)
    STATE_DIR.mkdir(exist_ok=True)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
