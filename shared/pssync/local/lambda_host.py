"""Runs the repository's Lambda handlers in worker processes, in place of moto's Docker-based invoke.

moto calls `LambdaFunction._invoke_lambda(event)` for every invocation (from Step Functions tasks and
from the Lambda API); we replace it to hand the event to a worker of that function. As on Lambda:

- each function has its own pool of containers (worker processes, see `pssync.local.worker`), created
  on first invoke and grown on demand up to the function's reserved concurrency (the template's
  `ReservedConcurrentExecutions`, else `DEFAULT_CONCURRENCY`); an invoke beyond it waits for a free one;
- a container handles one event at a time and is reused while it is healthy (warm starts);
- a container's environment is the runtime's base environment, the function's template environment and
  the AWS_LAMBDA_* variables, and nothing else; this process never holds a function's environment;
- an invocation that runs past the function's timeout is reported as `Sandbox.Timedout` and its
  container is killed and replaced; a container that dies is reported as `Runtime.ExitError`;
- when a function's environment changes (as after update-function-configuration), new containers
  serve the next invocations.

Workers are forked from one fork server per host, never from this multi-threaded process, or, with
`start_method="spawn"` (the default off Linux), started as fresh interpreters. docs/decisions.md
(2026-11-30) has the measurements behind the choice.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from pssync.local.faults import Directive, FaultPlan
from pssync.local.worker import MAX_CONTROL_MESSAGE
from pssync.local.worker import FakeLambdaContext as FakeLambdaContext  # re-exported for handler tests

DEFAULT_CONCURRENCY = 4
# Fork from a preloaded fork server where that is safe and SOCK_SEQPACKET exists (Linux); spawn elsewhere.
DEFAULT_START_METHOD = "forkserver" if sys.platform == "linux" else "spawn"
_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
INIT_TIMEOUT_SECONDS = 10  # Lambda's init phase limit; a slower init gets the function timeout, as on retry
# Imported once in the fork server, shared by every worker: third-party modules that read no environment
# at import. Not Powertools (it reads POWERTOOLS_DEBUG and AWS_EXECUTION_ENV at import) and no pssync module.
PRELOAD_MODULES = (
    "boto3",
    "boto3.session",
    "botocore.session",
    "botocore.client",
    "botocore.httpsession",
    "botocore.loaders",
    "urllib3",
    "s3transfer.manager",
    "pydantic",
    "pydantic.main",
    "pydantic.fields",
    "pydantic.networks",
    "pydantic_core",
    "httpx",
    "jmespath",
    "dateutil.parser",
)


@dataclass
class HostedFunction:
    name: str
    folder: str
    handler: str
    environment: dict[str, str]
    timeout_seconds: int = 30
    memory_mb: int = 256
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions from the template


@dataclass(frozen=True)
class InvocationRecord:
    function: str
    errored: bool
    error_type: str | None
    request_id: str = ""
    fault: Directive | None = None  # the fault plan's directive sent with it (it may not have fired)
    seconds: float | None = None  # from the event handed to a container to its answer or kill (None: none)
    cold: bool = False  # the first invocation of its container (lazy clients, caches: the slow one)


@dataclass(frozen=True)
class WorkerStart:
    """One cold start: from the fork request to the handler imported and ready."""

    function: str
    seconds: float
    init_ms: float  # the handler module's import inside the worker


class _PoolClosed(Exception):
    pass


class WorkerInitError(Exception):
    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(document.get("errorMessage", "init failed"))
        self.document = document


class _Starter(Protocol):
    """Starts containers: `_ForkServer` (forkserver) or `_Spawner` (spawn)."""

    @property
    def preload_ms(self) -> float: ...

    @property
    def exited(self) -> bool: ...

    def fork(self, worker: dict[str, Any]) -> tuple[int, Connection]: ...

    def kill(self, pid: int) -> None: ...

    def close(self) -> None: ...


class _ForkServer:
    """The host's side of `python -m pssync.local.worker`: fork and kill requests over a control socket."""

    def __init__(
        self, environment: Mapping[str, str], log_path: Path | None, preload: tuple[str, ...]
    ) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._control = ours
        self._lock = threading.Lock()
        self._preloaded: dict[str, Any] | None = None
        # Its own environment: the base environment and this interpreter's import path (workers drop both
        # for their function's environment before importing anything that reads it).
        env = {**environment, "PYTHONPATH": _import_path()}
        self._log = log_path.open("ab") if log_path is not None else None
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter and our own module
            [sys.executable, "-m", "pssync.local.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,  # Ctrl-C in a terminal stops the runtime; the runtime stops us
        )
        theirs.close()
        self._control.send(json.dumps({"preload": list(preload)}).encode())

    def _ready(self) -> dict[str, Any]:
        if self._preloaded is None:
            answer = self._control.recv(MAX_CONTROL_MESSAGE)
            if not answer:
                raise RuntimeError("the local Lambda fork server exited during its start")
            self._preloaded = json.loads(answer)
        return self._preloaded

    @property
    def preload_ms(self) -> float:
        with self._lock:
            return float(self._ready()["preload_ms"])  # init latency

    def fork(self, worker: dict[str, Any]) -> tuple[int, Connection]:
        with self._lock:
            self._ready()
            self._control.send(json.dumps({"op": "fork", "worker": worker}).encode())
            answer, fds, _, _ = socket.recv_fds(self._control, MAX_CONTROL_MESSAGE, 1, _CLOEXEC)
        if not answer or not fds:
            raise RuntimeError("the local Lambda fork server is gone")
        os.set_inheritable(fds[0], False)
        return int(json.loads(answer)["pid"]), Connection(fds[0])

    def kill(self, pid: int) -> None:
        with self._lock, contextlib.suppress(OSError):
            self._control.send(json.dumps({"op": "kill", "pid": pid}).encode())
            self._control.recv(MAX_CONTROL_MESSAGE)

    def close(self) -> None:
        """Closing the control socket makes the fork server kill its workers and exit."""
        with contextlib.suppress(OSError):
            self._control.shutdown(socket.SHUT_RDWR)
        self._control.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._log is not None:
            self._log.close()

    @property
    def exited(self) -> bool:
        return self.process.poll() is not None


class _Spawner:
    """The `spawn` start method: each container is a fresh interpreter, its environment set by exec."""

    preload_ms = 0.0

    def __init__(self, log_path: Path | None) -> None:
        self._log = log_path.open("ab") if log_path is not None else None
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def fork(self, worker: dict[str, Any]) -> tuple[int, Connection]:
        ours, theirs = socket.socketpair()
        env = {**worker["environment"], "PYTHONPATH": _import_path()}  # dropped by the worker at start
        process = subprocess.Popen(  # noqa: S603 - this interpreter and our own module
            [sys.executable, "-m", "pssync.local.worker", "--spawned", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        theirs.close()
        with self._lock:
            self._processes[process.pid] = process
        connection = Connection(ours.detach())
        connection.send_bytes(json.dumps(worker).encode())
        return process.pid, connection

    def kill(self, pid: int) -> None:
        with self._lock:
            process = self._processes.pop(pid, None)
        if process is not None:
            process.kill()
            process.wait()

    def close(self) -> None:
        with self._lock:
            processes, self._processes = list(self._processes.values()), {}
        for process in processes:
            process.kill()
            process.wait()
        if self._log is not None:
            self._log.close()

    @property
    def exited(self) -> bool:
        with self._lock:
            return not self._processes


def _import_path() -> str:
    """This interpreter's import path: the fork server and spawned workers import the same pssync."""
    return os.pathsep.join(p for p in sys.path if p)


@dataclass(eq=False)
class _Worker:
    pid: int
    connection: Connection
    invocations: int = 0


class _Pool:
    """The containers of one function (one configuration of it): at most `limit` at a time."""

    def __init__(
        self,
        function: HostedFunction,
        worker_spec: dict[str, Any],
        limit: int,
        server: _Starter,
        starts: list[WorkerStart],
    ) -> None:
        self.function = function
        self.environment = dict(worker_spec["environment"])
        self._spec = worker_spec
        self._limit = limit
        self._server = server
        self._starts = starts
        self._idle: list[_Worker] = []
        self._live = 0  # idle + busy + starting
        self._closed = False
        self._changed = threading.Condition()

    def acquire(self) -> _Worker:
        with self._changed:
            while True:
                if self._closed:
                    raise _PoolClosed(self.function.name)
                if self._idle:
                    return self._idle.pop()  # the most recently used: warm, as Lambda prefers
                if self._live < self._limit:
                    self._live += 1
                    break
                self._changed.wait()
        try:
            return self._start()  # outside the lock: cold starts of one function run in parallel
        except BaseException:
            with self._changed:
                self._live -= 1
                self._changed.notify()
            raise

    def _start(self) -> _Worker:
        started = time.perf_counter()
        pid, connection = self._server.fork(self._spec)
        worker = _Worker(pid, connection)
        limit = max(INIT_TIMEOUT_SECONDS, self.function.timeout_seconds)
        try:
            if not connection.poll(limit):
                raise WorkerInitError(
                    {
                        "errorType": "Runtime.InitTimeout",
                        "errorMessage": f"Init timed out after {limit:.2f} seconds",
                        "stackTrace": [],
                    }
                )
            answer = json.loads(connection.recv_bytes())
        except EOFError:
            answer = {"init_error": _exit_error("Runtime exited during init")}
        except BaseException:
            self._kill(worker)
            raise
        if "init_error" in answer:
            self._kill(worker)
            raise WorkerInitError(answer["init_error"])
        init_ms = float(answer["init_ms"])  # a start-up latency
        self._starts.append(WorkerStart(self.function.name, time.perf_counter() - started, init_ms))
        return worker

    def release(self, worker: _Worker) -> None:
        with self._changed:
            if not self._closed:
                self._idle.append(worker)
                self._changed.notify()
                return
            self._live -= 1
        worker.connection.close()  # EOF: the worker exits

    def discard(self, worker: _Worker) -> None:
        """A worker that timed out or died: killed, its slot freed for a fresh one."""
        self._kill(worker)
        with self._changed:
            self._live -= 1
            self._changed.notify()

    def _kill(self, worker: _Worker) -> None:
        self._server.kill(worker.pid)
        worker.connection.close()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._changed.notify_all()
        for worker in idle:
            worker.connection.close()


@dataclass
class _Run:
    """How one invocation ran in its container, for its InvocationRecord."""

    seconds: float | None = None
    cold: bool = False


def _exit_error(message: str) -> dict[str, Any]:
    return {"errorType": "Runtime.ExitError", "errorMessage": message, "stackTrace": []}


class LambdaHost:
    def __init__(
        self,
        functions_dir: Path,
        base_environment: Mapping[str, str],
        log_path: Path | None = None,
        *,
        default_concurrency: int = DEFAULT_CONCURRENCY,
        start_method: str = DEFAULT_START_METHOD,
        preload: tuple[str, ...] = PRELOAD_MODULES,
    ) -> None:
        self._functions_dir = functions_dir
        self._log_path = log_path
        # What every container starts from: a Lambda-like process environment, then the runtime's
        # (moto credentials, endpoint, region, ...). No developer AWS config files: as on Lambda.
        self._base_env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            **base_environment,
        }
        self._default_concurrency = default_concurrency
        self._functions: dict[str, HostedFunction] = {}
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._closed = False
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(f"start_method must be 'forkserver' or 'spawn', not {start_method!r}")
        self.start_method = start_method
        self._server: _Starter = (
            _ForkServer(self._base_env, log_path, preload)
            if start_method == "forkserver"
            else _Spawner(log_path)
        )
        self.invocations: list[InvocationRecord] = []
        self.worker_starts: list[WorkerStart] = []
        # Fault injection (tests, the scorecard): asked about every invocation; a directive it returns is
        # armed inside the container for that invocation only (pssync.local.faults). None: no faults.
        self.fault_plan: FaultPlan | None = None

    def register(self, function: HostedFunction) -> None:
        self._functions[function.name] = function

    def function(self, name: str) -> HostedFunction:
        return self._functions[name]

    @property
    def functions(self) -> Mapping[str, HostedFunction]:
        return self._functions

    @property
    def fork_server_preload_ms(self) -> float:
        """What the fork server spent importing PRELOAD_MODULES (0 with the spawn start method)."""
        return self._server.preload_ms

    @property
    def stopped(self) -> bool:
        """True once every container (and the fork server) has exited."""
        return self._server.exited

    def concurrency(self, function: HostedFunction) -> int:
        if function.reserved_concurrency is None:
            return self._default_concurrency
        return function.reserved_concurrency

    def worker_environment(self, function: HostedFunction) -> dict[str, str]:
        """Exactly what `os.environ` holds inside the function's containers."""
        return {
            **self._base_env,
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "LAMBDA_TASK_ROOT": str(self._functions_dir / function.folder),
            "_HANDLER": function.handler,
        }

    def _pool(self, function: HostedFunction) -> _Pool:
        environment = self.worker_environment(function)
        with self._lock:
            if self._closed:
                raise RuntimeError("the local Lambda host is shut down")
            pool = self._pools.get(function.name)
            if pool is not None and pool.environment == environment:
                return pool
            if pool is not None:
                pool.close()  # a new configuration: its containers retire as they finish
            module_file, _, handler_name = function.handler.rpartition(".")
            spec = {
                "function_name": function.name,
                "memory_mb": function.memory_mb,
                "timeout_seconds": function.timeout_seconds,
                "module_path": str(
                    self._functions_dir / function.folder / f"{module_file.replace('.', '/')}.py"
                ),
                "module_name": module_file,
                "handler_name": handler_name,
                "environment": environment,
                "log_path": str(self._log_path) if self._log_path is not None else None,
            }
            pool = _Pool(function, spec, self.concurrency(function), self._server, self.worker_starts)
            self._pools[function.name] = pool
            return pool

    def invoke(self, name: str, event: Any) -> tuple[Any, bool]:
        """Returns (result or error document, errored)."""
        function = self._functions[name]
        request_id = str(uuid.uuid4())
        fault = None
        plan = self.fault_plan
        if plan is not None and self.concurrency(function) >= 1:  # in the order invokes arrive
            fault = plan(function.name, event)
        if fault is not None:  # its report (if it asks for one) names this invocation
            fault = {**fault, "request_id": request_id}
        run = _Run()
        result, errored = self._invoke(function, event, request_id, fault, run)
        error_type = result.get("errorType") if errored and isinstance(result, dict) else None
        self.invocations.append(
            InvocationRecord(name, errored, error_type, request_id, fault, run.seconds, run.cold)
        )
        return result, errored

    def _invoke(
        self, function: HostedFunction, event: Any, request_id: str, fault: Directive | None, run: _Run
    ) -> tuple[Any, bool]:
        if self.concurrency(function) < 1:  # reserved concurrency 0: the function is switched off
            return {"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."}, True
        while True:
            pool = self._pool(function)  # raises once the host is closed
            try:
                worker = pool.acquire()
                break
            except _PoolClosed:
                continue  # the function was reconfigured while we waited: its new containers serve us
            except WorkerInitError as failure:
                return failure.document, True
        handed = time.monotonic()
        deadline = handed + function.timeout_seconds
        request = {"event": event, "deadline": deadline, "request_id": request_id}
        if fault is not None:
            request["fault"] = fault
        run.cold = worker.invocations == 0
        worker.invocations += 1
        try:
            worker.connection.send_bytes(json.dumps(request).encode())
            ready = worker.connection.poll(max(0.0, deadline - time.monotonic()))
            run.seconds = time.monotonic() - handed
            if not ready:
                pool.discard(worker)
                message = f"Task timed out after {function.timeout_seconds:.2f} seconds"
                self._log_line(f"{request_id} {message}")
                return {"errorType": "Sandbox.Timedout", "errorMessage": message, "stackTrace": []}, True
            reply = json.loads(worker.connection.recv_bytes())
        except (EOFError, OSError):
            pool.discard(worker)
            return _exit_error(f"RequestId: {request_id} Error: Runtime exited without a response"), True
        except BaseException:
            pool.discard(worker)
            raise
        pool.release(worker)
        if "error" in reply:
            return reply["error"], True
        return reply["result"], False

    def _log_line(self, message: str) -> None:
        if self._log_path is None:
            return
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._log_path.open("a", encoding="utf-8") as log:
            log.write(f"{stamp} {message}\n")

    def close(self) -> None:
        """Stops every container and the fork server."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()
        self._server.close()


_installed_host: LambdaHost | None = None


def install_into_moto(host: LambdaHost) -> None:
    """Route moto's Lambda invocations to `host` (moto 5.2's single Docker-specific method)."""
    global _installed_host
    from moto.awslambda.models import LambdaFunction

    _installed_host = host

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if _installed_host is None:
            raise RuntimeError("no local Lambda host is installed")
        payload = json.loads(event) if isinstance(event, str) and event else (event or {})
        result, errored = _installed_host.invoke(self.function_name, payload)
        return json.dumps(result), errored, ""

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


def scale_step_functions_waits(scale: float) -> None:
    """Retry intervals really sleep in moto's interpreter: tests shrink them, the demo keeps them."""
    import time as real_time

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class _ScaledTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            real_time.sleep(seconds * scale)

    retrier_decl.time = _ScaledTime()  # type: ignore[assignment,attr-defined]
