"""moto's server app on 127.0.0.1, one API call at a time.

AWS applies each API call atomically (a conditional put either wins or fails); moto's backends are not
thread-safe, and with Lambda containers running in parallel several calls arrive at once. So each call
runs alone, as the integration tests' in-process fixture does. Two kinds of call are let through
unserialised, because they wait for other calls: a Lambda Invoke (the handler it runs calls back into
this server) and an SQS ReceiveMessage that may long-poll (moto waits inside the call for a SendMessage).
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class OneCallAtATime:
    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        # Every AWS API call the runtime's functions, pollers and tools made, by service and operation:
        # the bench divides it by the business events processed (AWS calls per business event).
        self.calls: Counter[tuple[str, str]] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with self._count_lock:
            self.calls[_operation_of(environ)] += 1
        if _waits_for_other_calls(environ):
            return self._app(environ, start_response)
        with self._lock:
            result = self._app(environ, start_response)
            try:
                return list(result)  # the whole call, body included, inside the lock
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def _waits_for_other_calls(environ: dict[str, Any]) -> bool:
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith("/2015-03-31/functions/") and path.rstrip("/").endswith("/invocations"):
        return True
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target == "AWSStepFunctions.StartSyncExecution":
        return True  # runs the workflow, Lambda tasks included, inside the call
    wait: object
    if target == "AmazonSQS.ReceiveMessage":  # the JSON protocol (boto3)
        try:
            wait = json.loads(_buffered_body(environ) or b"{}").get("WaitTimeSeconds")
        except ValueError:
            return False
    elif not target and "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", "")):  # query protocol
        form = parse_qs(_buffered_body(environ).decode("utf-8", "replace"))
        if form.get("Action") != ["ReceiveMessage"]:
            return False
        wait = next(iter(form.get("WaitTimeSeconds", [])), None)
    else:
        return False
    # Without WaitTimeSeconds the queue's ReceiveMessageWaitTimeSeconds applies: it may wait too.
    return wait is None or str(wait) != "0"


_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


def _operation_of(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) from the SigV4 credential scope and the protocol's operation marker."""
    scope = _CREDENTIAL_SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    service = scope.group(1) if scope else "unsigned"
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return service, target.rsplit(".", 1)[-1]
    if "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", "")):
        form = parse_qs(_buffered_body(environ).decode("utf-8", "replace"))
        action = next(iter(form.get("Action", [])), None)
        if action:
            return service, action
    return service, str(environ.get("REQUEST_METHOD", "?"))  # REST protocols (S3, Lambda): the method


def _buffered_body(environ: dict[str, Any]) -> bytes:
    """Reads the request body and puts it back for the app."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


class MotoServer:
    """ThreadedMotoServer's set-up with the app wrapped in `OneCallAtATime`; port 0 picks a free port."""

    def __init__(self, port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = OneCallAtATime(DomainDispatcherApplication(create_backend_app))
        self._app = app
        self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def calls(self) -> Counter[tuple[str, str]]:
        """A snapshot of the AWS API calls served so far, by (service, operation)."""
        with self._app._count_lock:
            return Counter(self._app.calls)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
