"""moto's server app on 127.0.0.1, one API call at a time.

AWS applies each API call atomically (a conditional put either wins or fails); moto's backends are not
thread-safe, and with Lambda containers running in parallel several calls arrive at once. So each call
runs alone, as the integration tests' in-process fixture does. Two kinds of call are let through
unserialised, because they wait for other calls: a Lambda Invoke (the handler it runs calls back into
this server) and an SQS ReceiveMessage that may long-poll (moto waits inside the call for a SendMessage).

Costs moto pays on every execution, task, state or request are paid once (`install_interpreter_caches`,
measured with py-spy on this process, which was the runtime's bottleneck): the ANTLR parse of a definition
at every StartExecution (0.1-0.5 s for a seven-step workflow), a new boto3 client for every Lambda task
(50-90 ms), a new PLY parser for every JSONPath the states and EventBridge's rule targets evaluate, the
listing of moto's package to find a request's backend, `inspect.getmembers` of the response class, and
SQS's retention check building every queue attribute (counting every message) per received message.
None changes what an execution or a call does: the parsed program holds no execution state (that lives in
the execution's `Environment`; moto's own Map runs share one parsed iteration across items), parsed
JSONPaths are immutable, and the clients keep moto's configuration (one attempt, no parameter validation).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import logging
import re
import socket
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_ACCESS_LOG = logging.getLogger("werkzeug")


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


_INTERPRETER_CLIENT_POOL = 64  # executions invoking Lambda at once through one client (botocore: 10)
_STATE_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task"
_STATE_MAP = "moto.stepfunctions.parser.asl.component.state.exec.state_map"
_INTERPRETER_CLIENT_USERS = (  # the interpreter's modules that call boto_client_for (moto 5.2)
    f"{_STATE_TASK}.lambda_eval_utils",
    *(
        f"{_STATE_TASK}.service.state_task_service_{service}"
        for service in ("aws_sdk", "dynamodb", "events", "sfn", "sqs", "sns", "unsupported")
    ),
    f"{_STATE_MAP}.item_reader.eval.resource_eval_s3",
    f"{_STATE_MAP}.result_writer.resource_eval.resource_eval_s3",
)
_installed = threading.Lock()
_installed_caches: list[str] = []


def install_interpreter_caches() -> None:
    """Parse a definition once and reuse it; one SDK client per (service, region, endpoint). Idempotent."""
    with _installed:
        if _installed_caches:
            return
        _reuse_parsed_programs()
        _reuse_task_clients()
        _reuse_parsed_json_paths()
        _remember_response_methods()
        _read_retention_from_the_queue()
        _count_queue_messages_once()
        _installed_caches.append("installed")


def _reuse_parsed_programs() -> None:
    """One parsed program per definition text, shared by its executions. Safe because a parsed program
    holds no execution state (that lives in each execution's `Environment`): moto itself runs one parsed
    Map iteration program on many threads at once (`InlineIterationComponent` shares its `job_program`).
    A lent-per-execution pool was tried first and kept parsing: executions overlap (a burst of 100 bookings
    had ~100 running), so the pool grew to the peak and the parse stayed ~45 % of this process's CPU."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    parse = ExecutionWorker._get_evaluation_entrypoint
    programs: dict[str, Any] = {}
    lock = threading.Lock()

    def parsed_once(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            program = programs.get(definition)
        if program is None:
            program = parse(self)  # outside the lock: a first parse of two definitions may overlap
            with lock:
                program = programs.setdefault(definition, program)
        return program

    ExecutionWorker._get_evaluation_entrypoint = parsed_once  # type: ignore[method-assign]


def _reuse_task_clients() -> None:
    """moto's `boto_client_for`, cached: same configuration, a larger connection pool. botocore clients are
    thread-safe; the key holds the endpoint (tests start runtimes on other ports) and the in-process mode."""
    import boto3
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_module

    original = boto_client_module.boto_client_for
    clients: dict[tuple[str, str, bool, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        in_process = bool(botocore_stubber.enabled)
        key = (region, service, in_process, moto_server_port())
        with lock:
            client = clients.get(key)
            if client is None:
                endpoint = {} if in_process else {"endpoint_url": f"http://127.0.0.1:{moto_server_port()}"}
                client = boto3.client(
                    aws_access_key_id="ak",
                    region_name=region,
                    service_name=service,
                    aws_secret_access_key="sk",  # noqa: S106 - moto's own placeholder
                    config=Config(
                        parameter_validation=False,
                        retries={"max_attempts": 0, "total_max_attempts": 1},
                        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        max_pool_connections=_INTERPRETER_CLIENT_POOL,
                    ),
                    **endpoint,
                )
                clients[key] = client
            return client

    # Every module of the interpreter that imported the function by name gets the cached one.
    for name in _INTERPRETER_CLIENT_USERS:
        importlib.import_module(name)
    for name, module in list(sys.modules.items()):
        interpreter = name.startswith("moto.stepfunctions.parser")
        if interpreter and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
    boto_client_module.boto_client_for = boto_client_for


def _reuse_parsed_json_paths() -> None:
    """The interpreter parses every JSONPath (InputPath, ResultPath, `.$` parameters) on every state of every
    execution with a fresh PLY parser; a parsed path is an immutable expression tree, so one per string."""
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    for module in (json_path, result_path):
        module.parse = functools.lru_cache(maxsize=4096)(module.parse)  # type: ignore[attr-defined]
    # moto's EventBridge parses its target input paths on every PutEvents (`from jsonpath_ng.ext import parse`
    # inside the call): the same cache, where that import finds it.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]


def _remember_response_methods() -> None:
    """moto lists a response class's methods with `inspect.getmembers` on every request to find the action's
    handler; a class's methods do not change while the server runs."""
    from moto.core import responses

    listed = responses.method_names_from_class  # type: ignore[attr-defined]
    names = functools.lru_cache(maxsize=None)(lambda clazz: tuple(listed(clazz)))
    responses.method_names_from_class = names  # type: ignore[attr-defined,assignment]


def _read_retention_from_the_queue() -> None:
    """moto checks each message it hands out against the queue's retention period by building all of the
    queue's attributes, which counts every message in the queue (three times per received message): a
    receive costs O(queue length) per message, and draining a queue of 3,000 took minutes. Same check,
    reading the one attribute."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]


_sqs_call = threading.local()  # what one SQS call in progress on this thread has already computed


def _count_queue_messages_once() -> None:
    """moto builds every attribute of a queue, counting its messages three times (visible, in flight,
    delayed, each reading the clock per message), wherever it reads one attribute: SendMessage does it to
    read ContentBasedDeduplication (so EventBridge's delivery to a queue cost O(queue length): the
    scorecard's capture queue, which holds every event of the run, made R1 quadratic), and
    GetQueueAttributes does it three times per attribute asked for. Patched: SendMessage never reads a
    count, so within it the counts are not taken; within one GetQueueAttributes the attributes are built
    once; a count reads the clock once per pass. The values any caller sees are moto's."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue, SQSBackend

    build_attributes = Queue.attributes.fget  # type: ignore[attr-defined]

    def attributes(self: Any) -> dict[str, Any]:
        memo = getattr(_sqs_call, "attributes", None)
        if memo is None:
            return dict(build_attributes(self))
        if id(self) not in memo:
            memo[id(self)] = build_attributes(self)
        return dict(memo[id(self)])

    def within_one_call(method: Callable[..., Any], *, counts_unread: bool) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(_sqs_call, "attributes", None) is not None:
                return method(self, *args, **kwargs)  # nested (a batch's sends): the outer call's scope
            _sqs_call.attributes, _sqs_call.counts_unread = {}, counts_unread
            try:
                return method(self, *args, **kwargs)
            finally:
                _sqs_call.attributes, _sqs_call.counts_unread = None, False

        return call

    def counted(predicate: Callable[[Any, float], bool]) -> property:
        def count(self: Any) -> int:
            if getattr(_sqs_call, "counts_unread", False):
                return 0  # read by nobody: SendMessage looks only at ContentBasedDeduplication
            now = unix_time_millis()
            return sum(1 for message in self._messages if predicate(message, now))

        return property(count)

    def visible(message: Any, now: float) -> bool:  # moto's Message.visible and not Message.delayed
        return bool(now > message.visible_at and not now < message.delayed_until)

    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [message for message in self._messages if visible(message, now)]

    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    Queue.messages = property(messages)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages = counted(visible)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_not_visible = counted(  # type: ignore[method-assign,assignment]
        lambda message, now: not now > message.visible_at
    )
    Queue.approximate_number_of_messages_delayed = counted(  # type: ignore[method-assign,assignment]
        lambda message, now: bool(now < message.delayed_until)
    )
    SQSBackend.send_message = within_one_call(SQSBackend.send_message, counts_unread=True)  # type: ignore[method-assign]
    SQSBackend.send_message_batch = within_one_call(SQSBackend.send_message_batch, counts_unread=True)  # type: ignore[method-assign]
    SQSBackend.get_queue_attributes = within_one_call(SQSBackend.get_queue_attributes, counts_unread=False)  # type: ignore[method-assign]


def _keep_alive_handler(base: type, connections: set[Any], lock: threading.Lock) -> type:
    """moto's request handler, answering over persistent (HTTP/1.1 keep-alive) connections.

    werkzeug 3 closes every connection after one response ("Connection: close", then a 10 ms drain of the
    socket), so every AWS call of every container, poller and Step Functions task paid a TCP connect, a new
    server thread and a close: py-spy showed thread starts alone at 11 % of this process's CPU and the
    listen queue backed up. Keep-alive is safe here because the request body is read in full before the
    app runs (the next request line can never be mistaken for body), the response always carries its
    length, and botocore and httpx never pipeline. A connection the app fails on is closed.
    """

    class KeepAliveRequestHandler(base):  # type: ignore[misc]
        disable_nagle_algorithm = True  # headers and body go out in one write; no 40 ms delayed-ACK stalls
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with lock:
                connections.add(self.connection)

        def finish(self) -> None:
            with lock:
                connections.discard(self.connection)
            super().finish()

        def run_wsgi(self) -> None:
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            environ = self.make_environ()
            self.environ = environ
            environ["wsgi.input"] = io.BytesIO(_whole_body(environ))
            started: list[Any] = []
            written: list[bytes] = []

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                started[:] = [status, headers]
                return written.append  # WSGI's write(): buffered with the rest of the body

            try:
                result = self.server.app(environ, start_response)
                try:
                    body = b"".join([*written, *result])
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                status, headers = started
            except Exception:
                self.close_connection = True
                self.server.log("error", "Error on request:\n%s", traceback.format_exc())
                status, headers, body = "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")], b""
            code, _, reason = status.partition(" ")
            lines = [f"{self.protocol_version} {code} {reason}", f"Server: {self.version_string()}"]
            lines.append(f"Date: {self.date_time_string()}")
            # A HEAD answer (and 1xx/204/304) has no body: its headers, a Content-Length included (the
            # length of what a GET would return), are the app's. Any other answer carries its own length.
            no_body = self.command == "HEAD" or code.startswith("1") or code in ("204", "304")
            for name, value in headers:
                lowered = name.lower()
                if lowered == "transfer-encoding" or (lowered == "content-length" and not no_body):
                    continue
                if lowered == "connection" and value.lower() == "close":
                    self.close_connection = True
                lines.append(f"{name}: {value}")
            if no_body:
                body = b""
            else:
                lines.append(f"Content-Length: {len(body)}")
            if self.close_connection:
                lines.append("Connection: close")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            self.wfile.write(head + body)
            if _ACCESS_LOG.isEnabledFor(logging.INFO):
                self.log_request(code, len(body))

    return KeepAliveRequestHandler


def _whole_body(environ: dict[str, Any]) -> bytes:
    """The request body, read to its end: by Content-Length, or de-chunked (werkzeug marks that input as
    terminated). A request with neither has no body (RFC 9112 6.3)."""
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        return bytes(stream.read())
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(stream.read(length)) if length else b""


class MotoServer:
    """ThreadedMotoServer's set-up with the app wrapped in `OneCallAtATime`; port 0 picks a free port."""

    def __init__(self, port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        install_interpreter_caches()

        class _Dispatcher(DomainDispatcherApplication):
            """moto's dispatcher, remembering which backend serves a host: moto lists its package
            directory (about 200 stat calls) and tries every backend's URL pattern on each request."""

            def __init__(self, create_app: Any) -> None:
                super().__init__(create_app)
                self._backend_of: dict[str | None, Any] = {}

            def get_backend_for_host(self, host: str | None) -> Any:
                try:
                    return self._backend_of[host]
                except KeyError:
                    backend = super().get_backend_for_host(host)
                    self._backend_of[host] = backend
                    return backend

        app = OneCallAtATime(_Dispatcher(create_backend_app))
        self._app = app
        self._connections: set[Any] = set()  # open client connections: stop() ends them
        self._connections_lock = threading.Lock()
        handler = _keep_alive_handler(MotoRequestHandler, self._connections, self._connections_lock)
        self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=handler)
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
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:  # idle keep-alive connections would hold their threads forever
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
