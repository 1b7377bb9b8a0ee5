"""Run Lambda functions in-process: moto's simple Lambda backend, routed to the real handlers.

moto (with `use_docker: False`) answers every `lambda:invoke` from
`LambdaSimpleBackend.invoke`. While a `LambdaRuntime` is installed, that call runs the function's
own `app.py` handler with the environment the template gives it (layer paths under `/opt`
mapped to the layer's local directory), and a raised exception comes back the way Lambda sends
it: header `x-amz-function-error: Unhandled` and `{"errorType", "errorMessage"}`, so the state
machine's Retry and Catch see the same error names as on AWS.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

from moto.awslambda_simple.models import LambdaSimpleBackend

from certrelay import clients
from certrelay.local.environ import variables_set


class LogSink(io.TextIOBase):
    """Where the functions' structured log lines go: kept, one JSON document a line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = ""
        self.lines: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *complete, self._buffer = self._buffer.split("\n")
            self.lines.extend(line for line in complete if line.strip())
        return len(text)


# Powertools binds a logger's stream once per process (the stdlib logger "certrelay" is
# process-wide), so every local runtime shares one sink and remembers where its own lines start.
LOG_SINK = LogSink()
_IN_HANDLER = threading.local()


class _HandlerStdout(io.TextIOBase):
    """sys.stdout while a runtime is installed: a handler's prints (Powertools' metrics) go to
    the log sink, as Lambda sends stdout to CloudWatch Logs; every other thread's to the
    terminal, so the CLI's own output stays clean."""

    def __init__(self, terminal: Any) -> None:
        self.terminal = terminal

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        target = LOG_SINK if getattr(_IN_HANDLER, "active", False) else self.terminal
        return int(target.write(text))

    def flush(self) -> None:
        self.terminal.flush()

    def isatty(self) -> bool:
        return bool(self.terminal.isatty())

    def fileno(self) -> int:
        return int(self.terminal.fileno())


@dataclass
class LocalFunction:
    """One function of the template, as the local runtime runs it."""

    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    layer_dirs: list[Path]
    timeout: int = 30
    memory: int = 256
    module: ModuleType | None = None


@dataclass
class LambdaContext:
    """The fields of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class Invocation:
    function: str
    error_type: str | None


class LambdaRuntime:
    """Registry of local functions and the hook that makes moto run them."""

    def __init__(self, region: str, account: str) -> None:
        self.region = region
        self.account = account
        self.functions: dict[str, LocalFunction] = {}
        self.invocations: list[Invocation] = []
        # A directory mounted over every function's layers at /opt (the fleet's own profiles).
        self.opt_overlay: Path | None = None
        # Deployed URLs (an HTTP API's execute-api endpoint) -> where the engine serves them.
        self.url_rewrites: dict[str, str] = {}
        self._log_start = len(LOG_SINK.lines)
        # One invocation at a time: handlers run with their own environment variables, and the
        # process has one os.environ. Lambda concurrency is not what the local engine shows.
        self._lock = threading.RLock()
        # The outermost invocation running now (a handler may invoke another) and when it began.
        self._running: tuple[LocalFunction, float] | None = None
        self._closed = False

    @property
    def log_lines(self) -> list[str]:
        return LOG_SINK.lines[self._log_start :]

    def register(self, function: LocalFunction) -> None:
        self.functions[function.name] = function

    def load_all(self) -> None:
        """Import every handler now (Lambda's init phase), so the first event pays no import."""
        for function in self.functions.values():
            self._load(function)

    def invoke(self, function_name: str, payload: bytes) -> tuple[bytes, str | None]:
        """Run the handler; returns (response body, function error or None)."""
        function = self.functions.get(_short_name(function_name))
        if function is None:
            raise KeyError(f"no local function named {function_name}")
        event = json.loads(payload or b"{}")
        context = LambdaContext(function.name, function.arn, function.memory)
        with self._lock:
            if self._closed:
                raise RuntimeClosedError(f"the local runtime has stopped: {function.name} not run")
            outermost = self._running is None
            if outermost:
                self._running = (function, time.monotonic())
            try:
                with self._environment(function):
                    module = self._load(function)
                    handler = function.handler.rsplit(".", 1)[1]
                    entry: Callable[[Any, Any], Any] = getattr(module, handler)
                    outer = getattr(_IN_HANDLER, "active", False)  # a handler may invoke another
                    _IN_HANDLER.active = True
                    try:
                        result = entry(event, context)
                    except Exception as error:  # every handler error becomes Lambda's error payload
                        body = {"errorType": type(error).__name__, "errorMessage": str(error)}
                        self.invocations.append(Invocation(function.name, body["errorType"]))
                        return json.dumps(body).encode(), "Unhandled"
                    finally:
                        _IN_HANDLER.active = outer
            finally:
                if outermost:
                    self._running = None
        self.invocations.append(Invocation(function.name, None))
        return json.dumps(result).encode(), None

    def close(self, *, idle_wait: float = 1.0) -> str | None:
        """Refuse every new invocation, then wait for the one running to return.

        The wait lasts at most until the running handler's function Timeout (Lambda ends a
        handler then), or `idle_wait` seconds for a runtime busy loading a handler. Returns None
        once nothing runs, else the name of the function still running past that deadline: its
        thread is left to finish on its own (it changes os.environ no more, see `environment`).
        """
        self._closed = True
        while True:
            running = self._running
            wait = idle_wait if running is None else running[1] + running[0].timeout
            if running is not None:
                wait -= time.monotonic()
            if self._lock.acquire(timeout=max(wait, 0.0)):
                self._lock.release()
                return None
            if running is None or self._running is running:
                return running[0].name if running else "a handler's import"

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Route moto's simple Lambda backend to this runtime while the block runs."""
        runtime = self

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            payload = body.encode() if isinstance(body, str) else (body or b"")
            response, error = runtime.invoke(function_name, payload)
            if error:
                response_headers["x-amz-function-error"] = error
            return response

        stdout = sys.stdout
        sys.stdout = _HandlerStdout(stdout)
        try:
            with (
                mock.patch.object(LambdaSimpleBackend, "invoke", invoke),
                functions_share_clients(),
            ):
                yield
        finally:
            sys.stdout = stdout

    def _load(self, function: LocalFunction) -> ModuleType:
        if function.module is None:
            module_name, _ = function.handler.rsplit(".", 1)
            source = function.code_dir / f"{module_name}.py"
            spec = importlib.util.spec_from_file_location(
                f"certrelay_local_fn_{function.name.replace('-', '_')}", source
            )
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load handler {source}")
            module = importlib.util.module_from_spec(spec)
            with self._lock, self._environment(function), contextlib.redirect_stdout(LOG_SINK):
                spec.loader.exec_module(module)
            function.module = module
        return function.module

    def _local_value(self, value: str, function: LocalFunction) -> str:
        """An environment value as it must read here: layer paths and API URLs mapped."""
        for deployed, local in self.url_rewrites.items():
            if value.startswith(deployed):
                return local + value.removeprefix(deployed)
        overlay = [self.opt_overlay] if self.opt_overlay else []
        return _opt_path(value, [*function.layer_dirs, *overlay])

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """While the runtime is installed: every function's variables exist in os.environ.

        The process has one os.environ and other threads (moto's Map workers, the SSM installs,
        botocore's proxy and credential lookups) read it while a handler runs. So no key is ever
        added or removed mid-run: all of them are set here once, before any execution, each
        invocation only changes values (and puts nothing back), and when the block ends only
        these keys come back to the caller's values, one by one: os.environ is never emptied.
        """
        variables: dict[str, str] = {}
        for function in self.functions.values():
            variables.update(self._variables(function))
        with variables_set(variables, owner_changes=True):
            yield

    @contextlib.contextmanager
    def _environment(self, function: LocalFunction) -> Iterator[None]:
        variables = self._variables(function)
        missing = set(variables) - set(os.environ)
        if missing:  # only possible outside `environment()`, e.g. a runtime used on its own
            with variables_set(variables):
                yield
            return
        os.environ.update(variables)  # values only: the keys are already there
        yield

    def _variables(self, function: LocalFunction) -> dict[str, str]:
        return {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            **{k: self._local_value(v, function) for k, v in function.environment.items()},
        }


# The keyword arguments a shared client may be asked with: not credentials (a member account's
# clients, each with handlers of its own registered) and not a Config (no value to compare).
_SHAREABLE = frozenset({"region_name", "endpoint_url", "api_version", "use_ssl", "verify"})


@contextlib.contextmanager
def functions_share_clients() -> Iterator[None]:
    """The functions' botocore clients, made once per service and settings while this runs.

    On Lambda each function has a process of its own and makes its clients at init. Here they
    all run in one process, one invocation at a time, and a client made for one serves another
    as well: the same session (`certrelay.clients.session()`), the same process credentials and
    the same AWS_* settings. A demo's functions made 33 clients, about 4 ms each, of 12 kinds.
    A client is shared only if asked with the same service, the same keyword arguments (none
    but `_SHAREABLE`) and the same AWS_* variables (not AWS_LAMBDA_*, the function's own
    name and size, which botocore reads at no client's creation); any other is made as asked.
    """
    session = clients.session()
    make: Callable[..., Any] = session.create_client
    lock = threading.Lock()
    made: dict[tuple[Any, ...], Any] = {}

    def create_client(service_name: str, *args: Any, **kwargs: Any) -> Any:
        if args or not _SHAREABLE.issuperset(kwargs):
            return make(service_name, *args, **kwargs)
        settings = sorted(
            (k, v)
            for k, v in os.environ.items()
            if k.startswith("AWS_") and not k.startswith("AWS_LAMBDA_")
        )
        key = (service_name, *sorted(kwargs.items()), *settings)
        with lock:
            found = made.get(key)
        if found is None:
            found = make(service_name, **kwargs)
            with lock:
                found = made.setdefault(key, found)
        return found

    with mock.patch.object(session, "create_client", create_client):
        yield


class RuntimeClosedError(RuntimeError):
    """An invocation reached a runtime whose engine has stopped."""


def _short_name(function_name: str) -> str:
    """`name`, `name:qualifier` or a full function ARN -> the function's name."""
    if function_name.startswith("arn:"):
        return function_name.split(":")[6]
    return function_name.split(":", 1)[0]


def _opt_path(value: str, layer_dirs: list[Path]) -> str:
    """Map a path under /opt (where Lambda mounts layers) to the layer's local directory."""
    if not value.startswith("/opt/"):
        return value
    relative = value.removeprefix("/opt/")
    for layer_dir in reversed(layer_dirs):  # later layers win, as on Lambda
        if (layer_dir / relative).exists():
            return str(layer_dir / relative)
    return value
