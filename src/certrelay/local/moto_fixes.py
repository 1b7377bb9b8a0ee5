"""What the local engine changes in moto 5.2.5 so the stack runs as it would on AWS.

Each fix is a context manager the engine enters while it runs, and each says what moto does
differently and why the engine needs it; ENGINE-NOTES.md lists the facts behind them. A moto
upgrade is a deliberate step: re-run the whole suite.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast
from unittest import mock


@contextlib.contextmanager
def bus_delivers_to_state_machines(
    keep: Callable[[dict[str, Any]], None], start: Callable[[str, dict[str, Any]], None]
) -> Iterator[None]:
    """moto's EventBridge hands every accepted event to `keep` and starts state machine targets.

    moto delivers to SQS, logs and other buses but raises NotImplementedError for a Step
    Functions target; here a matching rule calls `start(machine_arn, event)` with the event as
    EventBridge sends it (time in ISO 8601), and its other targets are served as before.
    """
    from moto.events.models import EventsBackend, Rule

    original_put, original_send = EventsBackend.put_events, Rule.send_to_targets

    def put_events(backend: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = original_put(backend, entries)
        for entry, result in zip(entries, results, strict=True):
            if "EventId" in result:
                keep(_delivered(entry, result["EventId"], backend))
        return results

    def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        machines = [t["Arn"] for t in rule.targets if ":states:" in t["Arn"]]
        if machines and rule.event_pattern.matches_event(cast(Any, event)):
            delivered = {**event, "time": _iso(event.get("time"))}
            delivered.pop("ingestion-time", None)
            for machine_arn in machines:
                start(machine_arn, delivered)
        others = copy.copy(rule)
        others.targets = [t for t in rule.targets if ":states:" not in t["Arn"]]
        if others.targets:
            original_send(others, cast(Any, event), transform_input)

    with (
        mock.patch.object(EventsBackend, "put_events", put_events),
        mock.patch.object(Rule, "send_to_targets", send_to_targets),
    ):
        yield


@contextlib.contextmanager
def bus_invokes_functions(invoke: Callable[[str, bytes], Any]) -> Iterator[None]:
    """A rule's Lambda targets get the event, asynchronously, as EventBridge invokes them.

    moto raises NotImplementedError for a Lambda target; here `invoke(function_arn, payload)`
    runs on a thread of its own (EventBridge does not wait for the function), and the rule's
    other targets are served as before. Enter it after `bus_delivers_to_state_machines`.
    """
    from moto.events.models import Rule

    served = Rule.send_to_targets
    threads: list[threading.Thread] = []

    def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        functions = [t["Arn"] for t in rule.targets if ":lambda:" in t["Arn"]]
        if functions and rule.event_pattern.matches_event(cast(Any, event)):
            delivered = {**event, "time": _iso(event.get("time"))}
            delivered.pop("ingestion-time", None)
            payload = json.dumps(delivered).encode()
            for arn in functions:
                thread = threading.Thread(target=invoke, args=(arn, payload), daemon=True)
                threads.append(thread)
                thread.start()
        others = copy.copy(rule)
        others.targets = [t for t in rule.targets if ":lambda:" not in t["Arn"]]
        if others.targets:
            served(others, cast(Any, event), transform_input)

    with mock.patch.object(Rule, "send_to_targets", send_to_targets):
        try:
            yield
        finally:  # the embedded AWS must outlive every invocation it started
            for thread in threads:
                thread.join(timeout=30)


def _delivered(entry: dict[str, Any], event_id: str, backend: Any) -> dict[str, Any]:
    """A PutEvents entry as EventBridge hands it to a rule's target."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": backend.account_id,
        "time": _iso(entry.get("Time")),
        "region": backend.region_name,
        "resources": entry.get("Resources", []),
        "detail": json.loads(entry["Detail"]),
    }


def _iso(moment: Any) -> str:
    """EventBridge's `time` (ISO 8601, seconds) from what moto keeps (a unix float or none)."""
    if isinstance(moment, str):
        return moment
    if isinstance(moment, dt.datetime):
        when = moment
    else:
        when = dt.datetime.fromtimestamp(moment if moment is not None else time.time(), dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def isolated_aws_environment(account: str, region: str) -> Iterator[None]:
    """Fake credentials and the fleet's account/region, whatever the caller's shell has."""
    variables = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "MOTO_ACCOUNT_ID": account,
    }
    with mock.patch.dict(os.environ, variables):
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            os.environ.pop(name, None)
        for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
            os.environ.pop(name)  # an endpoint override (LocalStack, say) would bypass moto
        yield


@contextlib.contextmanager
def faster_clock(speed: float) -> Iterator[None]:
    """Divide every task timeout and every Wait state's duration by `speed`."""
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    original = Timeout._eval_body

    def scaled_timeout(self: Any, env: Any) -> None:
        original(self, env)
        env.stack.append(max(1, round(env.stack.pop() / speed)))

    def scaled_wait(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds / speed)

    with (
        mock.patch.object(Timeout, "_eval_body", scaled_timeout),
        mock.patch.object(WaitFunction, "_wait_interval", scaled_wait),
    ):
        yield


@contextlib.contextmanager
def send_task_failure_keeps_its_cause() -> Iterator[None]:
    """moto 5.2.5 drops SendTaskFailure's `cause` in its request parsing; AWS keeps it."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    with mock.patch.object(StepFunctionResponse, "send_task_failure", send_task_failure):
        yield


@contextlib.contextmanager
def acm_lists_in_pages() -> Iterator[None]:
    """ListCertificates as ACM answers it: MaxItems per page (1,000 at most) and a NextToken.

    moto 5.2.5 returns every certificate in one page and ignores both, so a caller's paging
    would never be exercised. The token is the position in the account's certificate order.
    The page is answered as ACM's JSON directly (dates in epoch seconds, as ACM sends them):
    moto's model-driven serializer took three quarters of a 10,000-certificate sweep.
    """
    from moto.acm.responses import AWSCertificateManagerResponse

    def list_certificates(self: Any) -> Any:
        statuses = self._get_param("CertificateStatuses") or []
        key_types = (self._get_param("Includes") or {}).get("keyTypes") or ["RSA_1024", "RSA_2048"]
        size = min(int(self._get_param("MaxItems") or 1000), 1000)
        arns = list(self.acm_backend._certificates)
        position = int(self._get_param("NextToken") or 0)
        summaries: list[dict[str, Any]] = []
        while position < len(arns) and len(summaries) < size:
            bundle = self.acm_backend.get_certificate(arns[position])
            position += 1
            if statuses and bundle.status not in statuses:
                continue
            summary = bundle.describe()["Certificate"]
            if summary["KeyAlgorithm"] not in key_types:
                continue
            summary["InUse"] = bool(summary.pop("InUseBy", []))
            summary["Exported"] = bundle.cert_options["Export"] == "ENABLED"
            summaries.append(summary)
        result: dict[str, Any] = {"CertificateSummaryList": summaries}
        if position < len(arns):
            result["NextToken"] = str(position)
        return json.dumps(result)

    with mock.patch.object(AWSCertificateManagerResponse, "list_certificates", list_certificates):
        yield


@contextlib.contextmanager
def definitions_parsed_once() -> Iterator[None]:
    """Parse each state machine definition once, not once per execution.

    moto's interpreter parses the ASL (ANTLR, pure Python: 0.2-0.35 s for this one) every time
    an execution starts, which was most of a short execution's time here. The parsed program
    is declarations only: every run's state lives in its own Environment, and moto itself
    already evaluates one parsed item processor for all of a Map's concurrent iterations.
    """
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._get_evaluation_entrypoint
    parsed: dict[str, Any] = {}
    lock = threading.Lock()

    def entrypoint(worker: Any) -> Any:
        definition = worker._evaluation_details.state_machine_details.definition
        with lock:
            if definition not in parsed:
                parsed[definition] = original(worker)
            return parsed[definition]

    with mock.patch.object(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint):
        yield
