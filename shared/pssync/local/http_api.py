"""The webhook API on 127.0.0.1: HTTP requests become API Gateway REST proxy events for the routed handler."""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pssync.local.lambda_host import LambdaHost
from pssync.local.resources import HttpRoute

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024  # REST APIs refuse larger payloads before Lambda sees them


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog: bursts of concurrent senders are queued, not refused


def _compile(route: HttpRoute) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
    return re.compile(f"^{pattern}$")


def proxy_event(
    route: HttpRoute,
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    path_params: dict[str, str],
) -> dict[str, Any]:
    split = urlsplit(raw_path)
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        multi.setdefault(name, []).append(value)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    query = parse_qs(split.query)
    return {
        "resource": route.path,
        "path": split.path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi.items()},
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.path,
            "httpMethod": method,
            "path": f"/local{split.path}",
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


class WebhookApiServer:
    def __init__(
        self, routes: list[HttpRoute], host: LambdaHost, bind: str = "127.0.0.1", port: int = 0
    ) -> None:
        compiled = [(route, _compile(route)) for route in routes]
        lambda_host = host

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return  # requests are logged by the handlers themselves

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has the headers of the GET, no body
                    self.wfile.write(body)

            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > API_GATEWAY_MAX_BODY:
                    self.close_connection = True
                    self._reply(413, {"Content-Type": "application/json"}, b'{"message":"Request Too Long"}')
                    return
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                for route, pattern in compiled:
                    match = pattern.match(path)
                    if match and route.method == self.command:
                        event = proxy_event(
                            route,
                            self.command,
                            self.path,
                            list(self.headers.items()),
                            body,
                            match.groupdict(),
                        )
                        result, errored = lambda_host.invoke(route.function_name, event)
                        if errored or not isinstance(result, dict):
                            self._reply(
                                502,
                                {"Content-Type": "application/json"},
                                b'{"message":"Internal server error"}',
                            )
                            return
                        payload = result.get("body") or ""
                        raw = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
                        self._reply(
                            int(result.get("statusCode", 200)), dict(result.get("headers") or {}), raw
                        )
                        return
                # What API Gateway (REST) answers for a method or path it has no route for.
                self._reply(
                    403,
                    {
                        "Content-Type": "application/json",
                        "x-amzn-ErrorType": "MissingAuthenticationTokenException",
                    },
                    b'{"message":"Missing Authentication Token"}',
                )

            do_POST = _dispatch
            do_GET = _dispatch
            do_PUT = _dispatch
            do_DELETE = _dispatch
            do_PATCH = _dispatch
            do_OPTIONS = _dispatch
            do_HEAD = _dispatch

        self._server = _Server((bind, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
