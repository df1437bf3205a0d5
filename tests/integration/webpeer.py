"""A loopback HTTP peer for integration tests: canned answers, and every request kept.

Used as what ``fetch@v1`` asks and where webhooks go::

    with WebPeer() as web:
        web.answer("/customer", 200, {"name": "Alice"})    # JSON
        web.answer("/broken", 500, "oops")                  # text
        web.answer("/slow", 200, {}, delay=3.0)
        ...  # web.url("/customer") in a scenario
        web.wait_for(lambda r: r.path == "/events")         # a Request, or AssertionError

Any other path answers 200 with an empty JSON object.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _Answer:
    status: int
    content_type: str
    body: bytes
    delay: float


class WebPeer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._answers: dict[str, _Answer] = {}
        self._lock = threading.Lock()
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                with peer._lock:
                    peer.requests.append(Request(self.command, self.path, headers, body))
                    answer = peer._answers.get(self.path.split("?")[0])
                if answer is None:
                    answer = _Answer(200, "application/json", b"{}", 0.0)
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(
        self, path: str, status: int, body: Any, *, delay: float = 0.0, content_type: str = ""
    ) -> None:
        """What ``path`` answers: bytes as they are (``content_type``), a str is
        text/plain, anything else JSON."""
        if isinstance(body, bytes):
            answer = _Answer(status, content_type or "application/octet-stream", body, delay)
        elif isinstance(body, str):
            answer = _Answer(status, "text/plain; charset=utf-8", body.encode(), delay)
        else:
            answer = _Answer(status, "application/json", json.dumps(body).encode(), delay)
        with self._lock:
            self._answers[path] = answer

    def received(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def wait_for(self, match: Callable[[Request], bool], timeout: float = 15.0) -> Request:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = next((r for r in self.requests if match(r)), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no matching request; got {[r.path for r in self.requests]}")

    def __enter__(self) -> WebPeer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
