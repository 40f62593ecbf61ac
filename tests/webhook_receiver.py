"""A webhook receiver on 127.0.0.1 for the e2e tests: a real HTTP server that records every
JSON body it is sent, by path, and answers confirm questions as the test says."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.cluster.processes import free_port

Answer = tuple[int, str]  # HTTP status, body


class WebhookReceiver:
    """Records POSTed JSON by path. `answer(path, body)` decides the reply (default 200); it
    can be stopped and started again on the same port (a receiver that is down a while)."""

    def __init__(self, answer: Callable[[str, dict[str, Any]], Answer] | None = None) -> None:
        self.port = free_port()
        self.answer = answer or (lambda path, body: (200, "ok"))
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for p, body in self.received if p == path]

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, text = receiver.answer(self.path, body)
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.received.append((self.path, body))
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
