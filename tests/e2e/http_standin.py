"""A scripted HTTP API on 127.0.0.1 standing in for a vendor's API (a CRM, Kantata) in e2e scenarios.

Handlers run in Lambda worker processes, so an HTTP mock inside the test's process (respx) cannot reach
them: the stand-in is a real server, and the stack is synthesized with its URL as the vendor's base URL.
It records every request; routes answer from a script. A request no route matches is answered 501 and
kept in `unmatched`, so a scenario can fail loudly instead of talking to anything else.

The port is stable per checkout when it is free (`preferred_port`): the URL is part of the CDK context,
which is part of the synthesized template's cache key, and a new port would mean a new synth (~12 s).
"""

from __future__ import annotations

import json
import re
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # the first value of each parameter
    headers: dict[str, str]  # lower-case names


Responder = Callable[[Request], tuple[int, Any]]  # (status, JSON body)


@dataclass
class Route:
    method: str
    path: re.Pattern[str]
    respond: Responder
    calls: list[Request] = field(default_factory=list)


def preferred_port(root: Path, offset: int) -> int:
    """A port below Linux's ephemeral range, derived from the checkout's path (another checkout, another
    port)."""
    return 21000 + (zlib.crc32(str(root.resolve()).encode()) % 2000) * 4 + offset


class StandIn:
    def __init__(self, name: str, port: int = 0) -> None:
        self.name = name
        self.routes: list[Route] = []
        self.unmatched: list[Request] = []
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                split = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=split.path,
                    query={k: v[0] for k, v in parse_qs(split.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                status, body = standin._answer(request)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve
            do_PATCH = _serve
            do_PUT = _serve

        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError:  # the preferred port is taken (another run): any free port works, uncached
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"standin-{name}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def route(self, method: str, path_regex: str, respond: Responder) -> Route:
        route = Route(method, re.compile(path_regex), respond)
        self.routes.append(route)
        return route

    def _answer(self, request: Request) -> tuple[int, Any]:
        with self._lock:
            for route in self.routes:
                if route.method == request.method and route.path.search(request.path):
                    route.calls.append(request)
                    return route.respond(request)
            self.unmatched.append(request)
        return 501, {"message": f"the {self.name} stand-in has no route for {request.method} {request.path}"}

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
