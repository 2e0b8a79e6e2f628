"""Runs the repository's Lambda handlers in-process, in place of moto's Docker-based invoke.

moto calls `LambdaFunction._invoke_lambda(event)` for every invocation (from Step Functions tasks and
from the Lambda API); we replace it to import `functions/<folder>/handler.py` and call it with the
function's environment from the template. Invocations are serialised with one lock because the
environment is process-wide; each Lambda container handles one request at a time anyway.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from pssync.local.intrinsics import ACCOUNT_ID, REGION


@dataclass
class HostedFunction:
    name: str
    folder: str
    handler: str
    environment: dict[str, str]
    timeout_seconds: int = 30
    memory_mb: int = 256


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


@dataclass(frozen=True)
class InvocationRecord:
    function: str
    errored: bool
    error_type: str | None


class LambdaHost:
    def __init__(
        self, functions_dir: Path, base_environment: Mapping[str, str], output: TextIO | None = None
    ) -> None:
        self._functions_dir = functions_dir
        self._output = output
        if output is not None:
            _route_emf_metrics(output)
        self._base_env = dict(base_environment)
        self._functions: dict[str, HostedFunction] = {}
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.RLock()
        self.invocations: list[InvocationRecord] = []

    def register(self, function: HostedFunction) -> None:
        self._functions[function.name] = function

    def function(self, name: str) -> HostedFunction:
        return self._functions[name]

    @property
    def functions(self) -> Mapping[str, HostedFunction]:
        return self._functions

    def _module(self, function: HostedFunction) -> ModuleType:
        module_file, _, _ = function.handler.rpartition(".")
        key = f"{function.folder}/{module_file}"
        if key not in self._modules:
            path = self._functions_dir / function.folder / f"{module_file.replace('.', '/')}.py"
            spec = importlib.util.spec_from_file_location(
                f"pssync_local_fn_{function.folder}_{module_file}", path
            )
            if spec is None or spec.loader is None:
                raise FileNotFoundError(path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[key] = module
        return self._modules[key]

    @contextmanager
    def _captured_output(self) -> Iterator[None]:
        """Handler logs and EMF metrics go to the runtime's log file, not the caller's terminal."""
        if self._output is None:
            yield
            return
        from pssync.observability import logger

        streams = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
        previous = [h.setStream(self._output) for h in streams]
        try:
            yield
        finally:
            for handler, stream in zip(streams, previous, strict=True):
                if stream is not None:
                    handler.setStream(stream)
            self._output.flush()

    @contextmanager
    def _environment(self, function: HostedFunction) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(self._base_env)
        os.environ.update(function.environment)
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function.name
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def invoke(self, name: str, event: Any) -> tuple[Any, bool]:
        """Returns (result or error document, errored)."""
        function = self._functions[name]
        with self._lock, self._environment(function), self._captured_output():
            handler: Callable[[Any, Any], Any] = getattr(
                self._module(function), function.handler.rpartition(".")[2]
            )
            context = FakeLambdaContext(function.name, function.memory_mb, function.timeout_seconds)
            try:
                result = handler(event, context)
            except Exception as error:  # the Lambda runtime turns any exception into a function error
                self.invocations.append(InvocationRecord(name, True, type(error).__name__))
                return {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_exception(error)[-3:],
                }, True
            self.invocations.append(InvocationRecord(name, False, None))
            return result, False


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
    """Retry intervals really sleep in moto's interpreter; tests shrink them, the demo keeps them."""
    import time as real_time

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class _ScaledTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            real_time.sleep(seconds * scale)

    retrier_decl.time = _ScaledTime()  # type: ignore[assignment,attr-defined]


def _route_emf_metrics(output: TextIO) -> None:
    """Powertools prints EMF lines (to CloudWatch Logs on AWS); locally they join the Lambda log file.

    Only the module-level `print` of the EMF provider is redirected: swapping sys.stdout would capture
    whatever other threads (the CLI, a test) print at the same time.
    """
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch

    def emf_print(*args: Any, **kwargs: Any) -> None:
        kwargs["file"] = output
        print(*args, **kwargs)

    cloudwatch.print = emf_print  # type: ignore[attr-defined]
