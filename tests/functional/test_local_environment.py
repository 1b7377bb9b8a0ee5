"""The local engine and os.environ: the process has one, and every thread reads it.

A handler thread that outlives its test (same process, as under xdist) must not empty
os.environ while it restores it, nor write back values the next test has changed since; and an
engine's exit waits for its running handlers, so none outlives it in the first place.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from certrelay.local.engine import LocalEngine
from certrelay.local.lambdas import LambdaRuntime, LocalFunction, RuntimeClosedError
from certrelay.local.moto_fixes import isolated_aws_environment

REGION, ACCOUNT = "eu-west-1", "123456789012"
LONG_WAIT = {"Type": "Wait", "Seconds": 600, "End": True}

HANDLER = """\
import os
import threading

STARTED = threading.Event()
GATE = threading.Event()
DONE = threading.Event()


def handler(event, context):
    STARTED.set()
    GATE.wait(event.get("hold", 5))
    DONE.set()
    return {"setting": os.environ["SLOW_SETTING"]}
"""


def slow_function(tmp_path: Path, *, timeout: int = 30) -> LocalFunction:
    code = tmp_path / "slow"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(HANDLER, encoding="utf-8")
    return LocalFunction(
        name="slow",
        arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:slow",
        code_dir=code,
        handler="app.handler",
        environment={"SLOW_SETTING": "from-the-template"},
        layer_dirs=[],
        timeout=timeout,
    )


def started_in_a_thread(runtime: LambdaRuntime, payload: bytes = b"{}") -> threading.Thread:
    """Invoke `slow` on another thread (as moto's execution workers do); return once it runs."""
    thread = threading.Thread(target=runtime.invoke, args=("slow", payload), daemon=True)
    thread.start()
    module = loaded(runtime)
    assert module.STARTED.wait(5)
    return thread


def loaded(runtime: LambdaRuntime) -> ModuleType:
    deadline = time.monotonic() + 5
    while runtime.functions["slow"].module is None:  # the thread imports it
        assert time.monotonic() < deadline
        time.sleep(0.01)
    module = runtime.functions["slow"].module
    assert module is not None
    return module


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "earlier-test")
    monkeypatch.delenv("SLOW_SETTING", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)


@pytest.mark.usefixtures("credentials")
def test_a_handler_ending_late_neither_empties_the_environment_nor_restores_stale_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a handler still running (its runtime's variables set around it)
    runtime = LambdaRuntime(REGION, ACCOUNT)
    runtime.register(slow_function(tmp_path))
    invocation = started_in_a_thread(runtime)
    # AND the next test setting its own credentials meanwhile, a reader watching them
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "next-test")
    unseen: list[int] = []
    watching = threading.Event()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            if "AWS_ACCESS_KEY_ID" not in os.environ:
                unseen.append(len(os.environ))
            watching.set()

    watcher = threading.Thread(target=reader, daemon=True)
    watcher.start()
    assert watching.wait(5)

    # WHEN the handler returns and its variables are put back
    loaded(runtime).GATE.set()
    invocation.join(5)
    stop.set()
    watcher.join(5)

    # THEN the reader never found the credentials gone, the next test's value stands,
    # and the handler's own variables are gone again
    assert unseen == []
    assert os.environ["AWS_ACCESS_KEY_ID"] == "next-test"
    assert "SLOW_SETTING" not in os.environ
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


@pytest.mark.usefixtures("credentials")
def test_an_isolated_environment_puts_back_only_what_it_changed() -> None:
    # GIVEN the engine's fake credentials in place
    with isolated_aws_environment(ACCOUNT, REGION):
        assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
        # WHEN someone else sets a variable of their own inside the block
        os.environ["CERTRELAY_TEST_OTHER"] = "kept"
    try:
        # THEN the credentials come back and the other variable is left alone
        assert os.environ["AWS_ACCESS_KEY_ID"] == "earlier-test"
        assert os.environ["CERTRELAY_TEST_OTHER"] == "kept"
        assert "MOTO_ACCOUNT_ID" not in os.environ or os.environ["MOTO_ACCOUNT_ID"] != ACCOUNT
    finally:
        os.environ.pop("CERTRELAY_TEST_OTHER", None)


def test_closing_a_runtime_waits_no_longer_than_the_running_functions_timeout(
    tmp_path: Path,
) -> None:
    # GIVEN a handler that holds on past its function's one-second timeout
    runtime = LambdaRuntime(REGION, ACCOUNT)
    runtime.register(slow_function(tmp_path, timeout=1))
    invocation = started_in_a_thread(runtime, b'{"hold": 4}')

    # WHEN the runtime closes
    began = time.monotonic()
    still_running = runtime.close()
    waited = time.monotonic() - began

    # THEN it names the function left running once its timeout has passed, not later
    assert still_running == "slow"
    assert 0.5 < waited < 2.5
    loaded(runtime).GATE.set()
    invocation.join(5)


def test_an_engine_exit_waits_for_a_running_handler_then_refuses_new_ones(
    tmp_path: Path,
) -> None:
    # GIVEN an engine with an execution in a long Wait and a handler running on another thread
    with LocalEngine() as engine:
        machine = engine._sfn.create_state_machine(
            name="waits",
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/waits",
            definition=json.dumps({"StartAt": "Long", "States": {"Long": LONG_WAIT}}),
        )["stateMachineArn"]
        waiting = engine._sfn.start_execution(stateMachineArn=machine, name="waits")
        backend = stepfunctions_parser_backends[engine.fleet.account][engine.fleet.region]
        (execution,) = [
            e for e in backend._get_executions() if e.exec_arn == waiting["executionArn"]
        ]
        engine.runtime.register(slow_function(tmp_path))
        invocation = started_in_a_thread(engine.runtime)
        module = loaded(engine.runtime)
        threading.Timer(0.3, module.GATE.set).start()
        # WHEN the engine exits

    # THEN the execution was stopped, the handler had returned by then,
    # and no handler runs on the stopped runtime
    assert execution.status == "ABORTED"
    assert module.DONE.is_set()
    invocation.join(5)
    with pytest.raises(RuntimeClosedError):
        engine.runtime.invoke("slow", b"{}")
    assert "SLOW_SETTING" not in os.environ
