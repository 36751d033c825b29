"""The stable endpoint of a local deployment: a small reverse proxy.

A deployment's address (``http://127.0.0.1:<port>``) must not change when the
model behind it does. The supervisor (:mod:`workbench._supervisor`) therefore
listens on that port with this proxy and forwards every request to the
current model server (an ``mlflow models serve`` process on a port of its
own). A blue/green swap is :meth:`Router.switch` followed by
:meth:`Router.drain` of the old server: requests that already picked the old
server finish there, every later request goes to the new one, so no request
sent during the swap fails.

Scoring is idempotent, so a request whose connection to the model server
broke before any answer came back (a pooled keep-alive connection the server
had just closed) is sent again on a fresh connection. Every answer carries
``X-Workbench-Deployment`` and ``X-Workbench-Model-Version`` headers that say
which version answered. Standard library only: the supervisor must start fast.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
VERSION_HEADER = "X-Workbench-Model-Version"
DEPLOYMENT_HEADER = "X-Workbench-Deployment"
BACKEND_TIMEOUT_S = 120.0  # a slow prediction is not a failure; MLflow's own limit is 60 s
_ATTEMPTS = 3
_ids = itertools.count(1)


@dataclass(eq=False)
class Backend:
    """One model server the proxy can forward to, and its requests in flight."""

    port: int
    version: str
    id: int = field(default_factory=lambda: next(_ids))
    in_flight: int = 0


class Router:
    """Picks the backend for each request and counts what is in flight on each.

    Picking and counting happen under one lock, and so does switching, so a
    request is either counted on the old backend before the switch (and the
    drain waits for it) or sent to the new one.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._current: Backend | None = None
        self._idle: dict[int, list[http.client.HTTPConnection]] = {}

    @property
    def current(self) -> Backend | None:
        with self._cond:
            return self._current

    def switch(self, backend: Backend | None) -> Backend | None:
        """Send every later request to ``backend`` (None: answer 503); returns the previous one."""
        with self._cond:
            previous, self._current = self._current, backend
            return previous

    def drain(self, backend: Backend, timeout: float) -> bool:
        """Wait until no request is in flight on ``backend``; then close its pooled connections."""
        with self._cond:
            drained = self._cond.wait_for(lambda: backend.in_flight == 0, timeout)
            stale = self._idle.pop(backend.id, [])
        for conn in stale:
            conn.close()
        return drained

    def acquire(self) -> Backend | None:
        with self._cond:
            backend = self._current
            if backend is not None:
                backend.in_flight += 1
            return backend

    def release(self, backend: Backend) -> None:
        with self._cond:
            backend.in_flight -= 1
            self._cond.notify_all()

    def connection(self, backend: Backend) -> http.client.HTTPConnection:
        """A pooled keep-alive connection to ``backend``, or a new one."""
        with self._cond:
            pool = self._idle.get(backend.id)
            if pool:
                return pool.pop()
        return http.client.HTTPConnection("127.0.0.1", backend.port, timeout=BACKEND_TIMEOUT_S)

    def give_back(self, backend: Backend, conn: http.client.HTTPConnection) -> None:
        with self._cond:
            if backend is self._current:
                self._idle.setdefault(backend.id, []).append(conn)
                return
        conn.close()


class ProxyServer(ThreadingHTTPServer):
    """The listening side; ``sock`` is a socket already bound and listening (handed over by the parent)."""

    daemon_threads = True

    def __init__(self, sock: socket.socket, router: Router, deployment: str) -> None:
        super().__init__(sock.getsockname()[:2], _ProxyHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.router = router
        self.deployment = deployment


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ProxyServer

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def log_message(self, format: str, *args: object) -> None:
        """Per-request access logs would drown the model server's log; errors are answered, not logged."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers, then the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self._answer_error(400, "Malformed request body framing.")
            return
        # Host names the proxy; Expect was answered here (the body is read already)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"host", "expect"}}
        headers["Content-Length"] = str(len(body))
        last_error = ""
        for attempt in range(_ATTEMPTS):
            backend = self.server.router.acquire()
            if backend is None:
                self._answer_error(503, "No model server is running for this deployment right now.")
                return
            try:
                status, reason, reply_headers, payload = self._exchange(backend, body, headers)
            except (OSError, http.client.HTTPException) as exc:
                # Nothing came back, so sending again cannot score twice visibly.
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.05 * attempt)
                continue
            finally:
                self.server.router.release(backend)
            self._answer(status, reason, reply_headers, payload, backend.version)
            return
        self._answer_error(502, f"The model server did not answer ({last_error}).")

    def _exchange(
        self, backend: Backend, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        router = self.server.router
        conn = router.connection(backend)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            router.give_back(backend, conn)
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        return response.status, response.reason, kept, payload

    def _answer(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, version: str) -> None:
        try:
            self.send_response(status, reason)
            for key, value in headers:
                if key.lower() not in ("server", "date"):
                    self.send_header(key, value)
            self.send_header(DEPLOYMENT_HEADER, self.server.deployment)
            self.send_header(VERSION_HEADER, version)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _answer_error(self, status: int, message: str) -> None:
        body = json.dumps({"error": message, "deployment": self.server.deployment}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header(DEPLOYMENT_HEADER, self.server.deployment)
            if status == 503:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
