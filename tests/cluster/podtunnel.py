"""The apiserver's way into the local pod network: an HTTP CONNECT proxy on a Unix socket, which
kube-apiserver dials for everything it sends into the cluster (its egress selector's `cluster`
selection: the pod and service proxy). It maps a pod IP to the loopback address its server
listens on (podnetwork.local_address), as a cluster's pod network would route it, so
`/api/v1/namespaces/NS/pods/NAME:PORT/proxy/...` reaches the real process. This is what a
cluster running Konnectivity does, with a proxy of our own in place of Konnectivity's.

Only pod-network addresses are tunnelled; anything else is refused (403)."""

from __future__ import annotations

import argparse
import contextlib
import socket
import socketserver
import threading
from pathlib import Path

from tests.cluster.podnetwork import is_pod_ip, local_address

HEAD_LIMIT = 8192
EGRESS_CONFIG = """\
apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
  - name: cluster
    connection:
      proxyProtocol: HTTPConnect
      transport:
        uds:
          udsName: {socket}
"""


def egress_config(socket_path: Path) -> str:
    """kube-apiserver's --egress-selector-config-file: the cluster's traffic through the tunnel."""
    return EGRESS_CONFIG.format(socket=socket_path)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            target.sendall(chunk)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


class _Connect(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
            chunk = client.recv(1024)
            if not chunk:
                return
            head += chunk
        method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or not is_pod_ip(host):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            return
        try:
            upstream = socket.create_connection((local_address(host), int(port)), timeout=5)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return
        upstream.settimeout(None)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join()
        upstream.close()


class PodTunnel(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", type=Path, required=True)
    args = parser.parse_args()
    args.socket.unlink(missing_ok=True)
    with PodTunnel(str(args.socket), _Connect) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
