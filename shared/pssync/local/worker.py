"""Lambda execution environments for the local runtime: a fork server and the workers it forks.

Nothing here runs in the runtime's own process. `LambdaHost` starts `python -m pssync.local.worker <fd>`
once (the fork server) with the runtime's base environment and a control socket. The fork server imports
heavy third-party modules (boto3, botocore, pydantic, httpx: modules that read no environment at import),
then forks one worker per request. Each worker is one Lambda container of one function:

1. its `os.environ` becomes exactly the environment the host sent (base + the function's template
   environment + the AWS_LAMBDA_* variables) before any pssync or Powertools module is imported;
2. its stdout and stderr are the runtime's Lambda log file (append mode), as CloudWatch Logs is on AWS;
3. it imports `functions/<folder>/handler.py`, says it is ready, then handles one event at a time, with a
   context whose remaining time counts down to the deadline the host enforces.

With the `spawn` start method (the fallback where fork is unsafe or SOCK_SEQPACKET is missing, e.g.
macOS) each worker is instead a fresh `python -m pssync.local.worker --spawned <fd>`: slower to start,
same protocol from step 1 on.

The fork server is single-threaded, so forking it is safe (the runtime's process is not: it runs the
moto server, the HTTP API and pollers on threads). It reaps its workers, kills one on the host's
request (a timed-out invocation) and kills all of them when the host closes the control socket or dies.

This module imports only the standard library and `pssync.local.intrinsics` (constants) at module level.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import signal
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from pssync.local.intrinsics import ACCOUNT_ID, REGION

MAX_CONTROL_MESSAGE = 1 << 20  # a fork request carries a function's environment: a few kB
INIT_FAILED_EXIT = 3


@dataclass
class FakeLambdaContext:
    """The Lambda context object handlers see: `get_remaining_time_in_millis()` counts down in real time.

    `deadline` is a `time.monotonic()` instant (CLOCK_MONOTONIC is shared by all processes of the machine,
    so the host's kill timer and the handler's countdown agree); 0 means "timeout_seconds from now".
    """

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    deadline: float = 0.0

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def error_document(error: BaseException) -> dict[str, Any]:
    """What the Lambda runtime returns for an unhandled exception; Step Functions matches `errorType`."""
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error)[-3:],
    }


def _init_error_document(error: BaseException, module_name: str) -> dict[str, Any]:
    """Errors while importing the handler, named as the Python runtime names them."""
    document = error_document(error)
    if isinstance(error, SyntaxError):
        document["errorType"] = "Runtime.UserCodeSyntaxError"
    elif isinstance(error, ImportError):
        document["errorType"] = "Runtime.ImportModuleError"
        document["errorMessage"] = f"Unable to import module '{module_name}': {error}"
    elif isinstance(error, AttributeError):
        document["errorType"] = "Runtime.HandlerNotFound"
    return document


# --- the fork server --------------------------------------------------------------------------------------


def serve(control: socket.socket) -> None:
    """The fork server's loop: preload, then fork and kill workers on request until the host goes away."""
    config = json.loads(control.recv(MAX_CONTROL_MESSAGE) or b"{}")
    started = time.perf_counter()
    preloaded = []
    for name in config.get("preload", []):
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # an optional dependency that is not installed: the worker imports what it needs
        preloaded.append(name)
    control.send(
        json.dumps({"preloaded": preloaded, "preload_ms": (time.perf_counter() - started) * 1000}).encode()
    )
    children: set[int] = set()
    try:
        while message := control.recv(MAX_CONTROL_MESSAGE):
            _reap(children)
            request = json.loads(message)
            if request["op"] == "fork":
                pid, channel = _fork_worker(control, request["worker"])
                children.add(pid)
                socket.send_fds(control, [json.dumps({"pid": pid}).encode()], [channel.fileno()])
                channel.close()
            elif request["op"] == "kill":
                pid = int(request["pid"])
                if pid in children:  # never signal a pid we have reaped: it may belong to someone else now
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    children.discard(pid)
                control.send(b"{}")
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                continue


def _reap(children: set[int]) -> None:
    for pid in list(children):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            children.discard(pid)


def _fork_worker(control: socket.socket, spec: dict[str, Any]) -> tuple[int, socket.socket]:
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the fork server's loop
        code = 1
        try:
            control.close()
            ours.close()
            code = run_worker(Connection(theirs.detach()), spec)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    theirs.close()
    return pid, ours


# --- a worker (one Lambda container) ----------------------------------------------------------------------


def run_worker(connection: Connection, spec: dict[str, Any]) -> int:
    os.environ.clear()
    os.environ.update(spec["environment"])
    time.tzset()
    if spec.get("log_path"):
        _write_output_to(spec["log_path"])
    started = time.perf_counter()
    try:
        handler = _load_handler(spec["module_path"], spec["module_name"], spec["handler_name"])
    except Exception as error:
        document = _init_error_document(error, spec["module_name"])
        _log_error(document)
        connection.send_bytes(json.dumps({"init_error": document}).encode())
        return INIT_FAILED_EXIT
    connection.send_bytes(
        json.dumps({"ready": True, "init_ms": (time.perf_counter() - started) * 1000}).encode()
    )
    while True:
        try:
            request = json.loads(connection.recv_bytes())
        except EOFError:  # the host closed this container
            return 0
        reply = _invoke(handler, spec, request)
        sys.stdout.flush()
        sys.stderr.flush()
        connection.send_bytes(reply)


def _write_output_to(log_path: str) -> None:
    """fd 1 and 2 become the log file; line buffering keeps each log line one append-mode write."""
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)


def _load_handler(module_path: str, module_name: str, handler_name: str) -> Callable[[Any, Any], Any]:
    spec = importlib.util.spec_from_file_location(module_name, module_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module at {module_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[Any, Any], Any] = getattr(module, handler_name)
    return handler


def _invoke(handler: Callable[[Any, Any], Any], spec: dict[str, Any], request: dict[str, Any]) -> bytes:
    context = FakeLambdaContext(
        function_name=spec["function_name"],
        memory_limit_in_mb=spec["memory_mb"],
        timeout_seconds=spec["timeout_seconds"],
        aws_request_id=request["request_id"],
        log_group_name=f"/aws/lambda/{spec['function_name']}",
        deadline=request["deadline"],
    )
    fault = request.get("fault")  # fault injection (pssync.local.faults): this invocation only
    if fault is not None:
        from pssync.local import faults

        faults.arm(fault)
    try:
        result = handler(request["event"], context)
    except Exception as error:  # the Lambda runtime turns any exception into a function error
        document = error_document(error)
        _log_error(document, request["request_id"])
        return json.dumps({"error": document}).encode()
    finally:
        if fault is not None:
            faults.disarm()
    try:
        return json.dumps({"result": result}).encode()
    except (TypeError, ValueError) as error:  # Lambda cannot return what JSON cannot carry either
        document = {
            "errorType": "Runtime.MarshalError",
            "errorMessage": f"Unable to marshal response: {error}",
            "stackTrace": [],
        }
        _log_error(document, request["request_id"])
        return json.dumps({"error": document}).encode()


def _log_error(document: dict[str, Any], request_id: str = "") -> None:
    """The Python runtime prints unhandled errors to the function's log: `[ERROR] Type: message`."""
    lines = [f"[ERROR] {document['errorType']}: {document['errorMessage']}", *document["stackTrace"]]
    if request_id:
        lines.insert(0, f"RequestId: {request_id}")
    sys.stderr.write("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    sys.stderr.flush()


def spawned(connection: Connection) -> int:
    """A worker started as a fresh interpreter (the `spawn` start method): its spec comes first."""
    return run_worker(connection, json.loads(connection.recv_bytes()))


if __name__ == "__main__":
    # Ctrl-C in a terminal reaches the whole session: the host shuts us down, not the signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.argv[1] == "--spawned":
        sys.exit(spawned(Connection(int(sys.argv[2]))))
    serve(socket.socket(fileno=int(sys.argv[1])))
