"""What the local engine changes in moto 5.2.5 so the stack runs as it would on AWS.

Each fix is a context manager the engine enters while it runs, and each says what moto does
differently and why the engine needs it; the tests that run the stack on the engine
(tests/statemachine, tests/functional/test_engine_quotas.py) fail when one stops holding. A moto
upgrade is a deliberate step: re-run the whole suite.

AWS quotas moto does not enforce, failed here the way AWS fails them (each cites its source):
- `history_capped_like_aws`: a Standard execution's history stops at HISTORY_EVENT_LIMIT
  (25,000) events; the execution fails with `States.Runtime`, its ExecutionFailed being the
  last event.
- `payloads_limited_like_aws`: PAYLOAD_LIMIT_BYTES (256 KiB) on a state's input after
  Parameters, a state's output and a task's result (`States.DataLimitExceeded`, which
  `States.ALL` does not match) and on StartExecution's input (ValidationException).
- `bus_refuses_oversized_requests`: PutEvents refuses a request over
  EVENTBRIDGE_REQUEST_LIMIT_BYTES (1 MiB) with ValidationException.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from unittest import mock

from botocore.loaders import JSONFileLoader, Loader
from jsonpath_ng.ext.parser import ExtendedJsonPathParser
from jsonpath_ng.parser import JsonPathParser
from moto.acm.responses import AWSCertificateManagerResponse
from moto.core.models import botocore_stubber
from moto.core.responses import EmptyResult
from moto.events.exceptions import ResourceNotFoundException as EventsResourceNotFound
from moto.events.exceptions import ValidationException as EventsValidationException
from moto.events.models import EventsBackend, Rule, events_backends
from moto.iam.models import iam_backends
from moto.kms import models as kms_models
from moto.kms import utils as kms_utils
from moto.ssm.models import Command as SsmCommand
from moto.stepfunctions.exceptions import ValidationException as StatesValidationException
from moto.stepfunctions.parser.api import (
    HistoryEventType,
    InvalidToken,
    TaskFailedEventDetails,
    TaskTimedOut,
)
from moto.stepfunctions.parser.asl.component.common.error_name import (
    error_equals_decl,
    states_error_name,
)
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.parargs import Parargs
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend

from certrelay.events import entry_size
from certrelay.local import cache
from certrelay.local.environ import variables_set
from certrelay.text import iso_z


@contextlib.contextmanager
def roles_must_exist() -> Iterator[None]:
    """STS refuses (AccessDenied) to assume a role its account does not have, as AWS does: moto
    assumes any ARN, so a member account without a member stack would look assumable."""
    original = STSBackend.assume_role

    def assume_role(self: Any, **kwargs: Any) -> Any:
        role_arn = str(kwargs["role_arn"])
        account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
        if name not in {r.name for r in iam_backends[account]["global"].roles.values()}:
            raise STSClientError(
                "AccessDenied", f"not authorized to perform: sts:AssumeRole on {role_arn}"
            )
        return original(self, **kwargs)

    with mock.patch.object(STSBackend, "assume_role", assume_role):
        yield


@contextlib.contextmanager
def bus_delivers_to_state_machines(
    keep: Callable[[dict[str, Any]], None], start: Callable[[str, dict[str, Any]], None]
) -> Iterator[None]:
    """moto's EventBridge hands every accepted event to `keep` and starts state machine targets.

    moto delivers to SQS, logs and other buses but raises NotImplementedError for a Step
    Functions target; here a matching rule calls `start(machine_arn, event)` with the event as
    EventBridge sends it (time in ISO 8601), and its other targets are served as before.
    """
    original_put, original_send = EventsBackend.put_events, Rule.send_to_targets

    def put_events(backend: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = original_put(backend, entries)
        for entry, result in zip(entries, results, strict=True):
            if "EventId" in result:
                keep(_delivered(entry, result["EventId"], backend))
        return results

    def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        machines = [t["Arn"] for t in rule.targets if ":states:" in t["Arn"]]
        buses = [t["Arn"] for t in rule.targets if _is_event_bus(t["Arn"])]
        if (machines or buses) and rule.event_pattern.matches_event(cast(Any, event)):
            delivered = {**event, "time": _iso(event.get("time"))}
            delivered.pop("ingestion-time", None)
            for machine_arn in machines:
                start(machine_arn, delivered)
            for bus_arn in buses:
                _forward(delivered, bus_arn)
        others = copy.copy(rule)
        others.targets = [
            t for t in rule.targets if ":states:" not in t["Arn"] and not _is_event_bus(t["Arn"])
        ]
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


def _is_event_bus(arn: str) -> bool:
    parts = arn.split(":", 5)
    return len(parts) == 6 and parts[2] == "events" and parts[5].startswith("event-bus/")


def _forward(event: dict[str, Any], bus_arn: str) -> None:
    """A rule's event-bus target: the bus's rules get the event as it was, as on AWS.

    moto re-puts only source, detail-type and detail into the target bus, so `account`,
    `region` and `resources` become the receiving bus's own (and `id`, `time` new); AWS keeps
    the original event's, and triage checks the resource ARN against that account and Region.
    A bus that does not exist drops the event (EventBridge counts a FailedInvocation).
    """
    _, _, _, region, account, resource = bus_arn.split(":", 5)
    try:
        bus = events_backends[account][region].describe_event_bus(
            resource.removeprefix("event-bus/")
        )
    except EventsResourceNotFound:
        return
    for target_rule in list(bus.rules.values()):
        target_rule.send_to_targets(cast(Any, copy.deepcopy(event)))


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
    return iso_z(when)


@contextlib.contextmanager
def isolated_aws_environment(account: str, region: str) -> Iterator[None]:
    """Fake credentials and the fleet's account/region, whatever the caller's shell has."""
    with _isolated({"MOTO_ACCOUNT_ID": account}, region):
        yield


@contextlib.contextmanager
def accounts_follow_credentials(hub: str, region: str) -> Iterator[None]:
    """Several accounts: each call lands in the account of the credentials that sign it.

    `isolated_aws_environment`'s MOTO_ACCOUNT_ID overrides every credential in moto 5.2.5
    (core/responses.py, get_current_account), so an assumed role's calls would stay in the one
    account. Here it is unset, and a key moto does not know (the fake `testing`, and the `ak`
    its Step Functions interpreter signs with) belongs to `hub` (moto's DEFAULT_ACCOUNT_ID,
    which iam/models.py reads at each call). STS AssumeRole keys belong to the role's account.
    """
    with (
        _isolated({}, region, removed=["MOTO_ACCOUNT_ID"]),
        mock.patch("moto.iam.models.DEFAULT_ACCOUNT_ID", hub),
    ):
        yield


@contextlib.contextmanager
def _isolated(extra: dict[str, str], region: str, removed: Sequence[str] = ()) -> Iterator[None]:
    """Only these keys change and come back (never `patch.dict`, which empties os.environ
    while it restores, under the feet of every thread reading credentials then)."""
    variables = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **extra,
    }
    # An endpoint override (LocalStack, say) would bypass moto.
    endpoints = [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]
    profile = ["AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"]
    with variables_set(variables, removed=[*removed, *profile, *endpoints]):
        yield


@contextlib.contextmanager
def faster_clock(speed: float) -> Iterator[None]:
    """Divide every task timeout and every Wait state's duration by `speed`."""
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
def closed_tasks_answer_timed_out() -> Iterator[None]:
    """A token whose execution no longer runs answers TaskTimedOut, as AWS does.

    AWS keeps InvalidToken for a token it never issued ("The provided token is not valid") and
    answers TaskTimedOut once "the task associated with the token has already been closed".
    moto 5.2.5 looks for the token among running executions only and answers InvalidToken for
    every other, so a late decision would look like a forged token.
    """
    closed_text = "The task associated with the token has already been closed."

    def closed(backend: Any, token: str) -> bool:
        return any(
            execution.exec_worker is not None
            and execution.exec_worker.env.callback_pool_manager.get(token) is not None
            for execution in backend._get_executions()
        )

    def answering(name: str) -> Callable[..., Any]:
        original = getattr(StepFunctionsParserBackend, name)

        def call(self: Any, task_token: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, task_token, *args, **kwargs)
            except InvalidToken:
                if closed(self, task_token):
                    # (moto's own `TaskTimedOut()` lacks the message its class requires)
                    raise TaskTimedOut(closed_text, "TaskTimedOut", 400) from None
                raise

        return call

    names = ("send_task_success", "send_task_failure", "send_task_heartbeat")
    with contextlib.ExitStack() as patches:
        for name in names:
            patches.enter_context(
                mock.patch.object(StepFunctionsParserBackend, name, answering(name))
            )
        yield


@contextlib.contextmanager
def acm_lists_in_pages() -> Iterator[None]:
    """ListCertificates as ACM answers it: MaxItems per page (1,000 at most) and a NextToken.

    moto 5.2.5 returns every certificate in one page and ignores both, so a caller's paging
    would never be exercised. The token is the position in the account's certificate order.
    The page is answered as ACM's JSON directly (dates in epoch seconds, as ACM sends them):
    moto's model-driven serializer took three quarters of a 10,000-certificate sweep.
    """

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
    """Parse each state machine definition once, not once per execution (nor at creation).

    moto's interpreter parses the ASL (ANTLR, pure Python: about 1 s for this one) when the
    machine is created, to validate it, and again every time an execution starts. The parsed
    program is declarations only: every run's state lives in its own Environment, and moto itself
    already evaluates one parsed item processor for all of a Map's concurrent iterations. So one
    program serves every use of a definition in the process, and it is kept on disk
    (certrelay.local.cache, keyed by the definition's text and moto's version) for the next
    process. A definition that does not parse raises as before and is never kept.
    """
    original = AmazonStateLanguageParser.parse
    parsed: dict[str, Any] = {}
    lock = threading.Lock()
    moto_version = cache.version("moto")

    def parse(definition: str) -> tuple[Any, Any]:
        with lock:
            if definition not in parsed:
                digest = cache.key("asl", definition, moto_version)
                program = cache.load("asl", digest)
                if program is None:
                    program, _tree = original(definition)
                    cache.store("asl", digest, program)
                parsed[definition] = program
            # (moto's validation ignores the parse tree and the interpreter takes the program)
            return parsed[definition], None

    with mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(parse)):
        yield


class _KeyPairWhenUsed:
    """A KMS key's asymmetric key pair, generated when first used (Sign, Verify, GetPublicKey)."""

    def __init__(self, make: Callable[[str], Any], key_spec: str) -> None:
        self._make, self._key_spec = make, key_spec
        self._made: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._made is None:
                self._made = self._make(self._key_spec)
        return getattr(self._made, name)


@contextlib.contextmanager
def kms_key_pairs_made_when_used() -> Iterator[None]:
    """CreateKey without generating an unused RSA key pair.

    moto 5.2.5 generates a key pair for every key it creates, an RSA-2048 one even for a
    symmetric key (which can never sign): 0.1-0.35 s each here, over a second for the stack's
    keys. Here the pair is generated the first time the key uses it; nothing else changes.
    """
    original = kms_utils.generate_private_key

    def generate_private_key(key_spec: str) -> Any:
        return _KeyPairWhenUsed(original, key_spec)

    with mock.patch.object(kms_models, "generate_private_key", generate_private_key):
        yield


@contextlib.contextmanager
def executions_announce_progress(
    on_event: Callable[[], None], on_end: Callable[[str], None]
) -> Iterator[None]:
    """Call `on_event()` after an execution records a history event and `on_end(arn)` once its
    status is final (its history complete), so the engine's waits wake on what they wait for
    instead of polling DescribeExecution (whose calls took the interpreter's threads' time)."""
    add_original = EventManager.add_event
    reflect_original = BaseExecutionWorkerCommunication._reflect_execution_status

    def add_event(manager: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return add_original(manager, *args, **kwargs)
        finally:
            on_event()

    def reflect_execution_status(communication: Any) -> None:
        try:
            reflect_original(communication)  # type: ignore[no-untyped-call]
        finally:
            on_end(str(communication.execution.exec_arn))

    with (
        mock.patch.object(EventManager, "add_event", add_event),
        mock.patch.object(
            BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect_execution_status
        ),
    ):
        yield


@contextlib.contextmanager
def interpreter_reuses_its_work() -> Iterator[None]:
    """moto's interpreter builds a boto3 client for every task it runs and parses every JSONPath
    every time it evaluates one (jsonpath-ng builds its parser tables anew each time): 20-40 ms
    and 1-2 ms, hundreds of times in a demo. Here each (region, service) gets one client,
    created the first time (clients are thread-safe, and moto's carry fixed fake credentials
    whatever the state's), and each path string is parsed once (a parsed path is read-only),
    by a parser made once per thread."""
    created_by = boto_client.boto_client_for
    clients: dict[tuple[str, str, bool], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, bool(botocore_stubber.enabled))
        with lock:
            if key not in clients:
                clients[key] = created_by(region, service, state_credentials)
            return clients[key]

    with contextlib.ExitStack() as patches:
        for name, module in list(sys.modules.items()):
            if (
                name.startswith("moto.stepfunctions.parser.")
                and getattr(module, "boto_client_for", None) is created_by
            ):
                patches.enter_context(mock.patch.object(module, "boto_client_for", boto_client_for))
        for module, parser_class in (
            (json_path, ExtendedJsonPathParser),
            (result_path, JsonPathParser),
        ):
            parse = functools.lru_cache(maxsize=4096)(_parse_with(parser_class))
            patches.enter_context(mock.patch.object(module, "parse", parse))
        yield


def _parse_with(parser_class: type[JsonPathParser]) -> Callable[[str], Any]:
    """jsonpath-ng's `parse`, with parsers made once and reused: its `parse` builds a new
    parser, whose tables take two thirds of the time of parsing a short path. A parser is
    reusable, but not by two threads at once, so each parse takes an idle one (or makes one)
    and gives it back: moto's interpreter runs every execution and every Map iteration on a
    thread of its own, so one parser per thread was still 24 parsers a demo (12 ms); the
    parses of a demo need as many as run at once."""
    idle: list[JsonPathParser] = []
    lock = threading.Lock()

    def parse(path: str) -> Any:
        with lock:
            parser = idle.pop() if idle else None
        if parser is None:
            parser = parser_class()
        parsed = parser.parse(path)  # a path that does not parse: its parser is not reused
        with lock:
            idle.append(parser)
        return parsed

    return parse


class _SharedModels:
    """What models_loaded_once puts in place of three botocore loader methods."""

    def __init__(self, load_data_with_path: Any, load_file: Any) -> None:
        self._load_data_with_path, self._load_file = load_data_with_path, load_file
        self._lock = threading.Lock()
        self._walked: dict[str, dict[str, set[str]]] = {}
        self._loaded: dict[tuple[Any, ...], Any] = {}
        self._files: dict[str, Any] = {}  # file digest -> its data, for every search path

    def list_available_services(self, loader: Loader, type_name: str) -> list[str]:
        services: set[str] = set()
        for folder in loader.search_paths:
            if os.path.isdir(folder):
                services |= self._services_in(folder).get(type_name, set())
        return sorted(services)

    def _services_in(self, folder: str) -> dict[str, set[str]]:
        """One data folder's services by model type, walked once for every type (botocore
        walks every search path again for each type: service-2, endpoint-rule-set-1, …)."""
        with self._lock:
            if folder in self._walked:
                return self._walked[folder]
        found = _services_by_model_type(folder)  # outside the lock: a race walks twice
        with self._lock:
            return self._walked.setdefault(folder, found)

    def load_data_with_path(self, loader: Loader, name: str) -> Any:
        key = (tuple(loader.search_paths), name)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
        value = self._load_data_with_path(loader, name)  # outside the lock: as above
        with self._lock:
            return self._loaded.setdefault(key, value)

    def load_file(self, files: JSONFileLoader, full_path: str, open_method: Any) -> Any:
        try:
            raw = Path(full_path).read_bytes()
        except OSError:  # missing (botocore tries each extension), or not a file
            return None
        digest = cache.key("botocore-json", os.path.basename(full_path), raw)
        with self._lock:
            if digest in self._files:  # read already, by a loader with another search path
                return self._files[digest]
        data = cache.load("botocore-json", digest)
        if data is None:
            data = self._load_file(files, full_path, open_method)
            if data is not None:
                cache.store("botocore-json", digest, data)
        if data is None:
            return None
        with self._lock:
            return self._files.setdefault(digest, data)


def _services_by_model_type(folder: str) -> dict[str, set[str]]:
    """{model type: services having it} in one botocore data folder (<service>/<version>/
    <type>.json[.gz]), as botocore's Loader.list_available_services finds them type by type."""
    found: dict[str, set[str]] = {}
    with os.scandir(folder) as services:
        for service in services:
            if not service.is_dir():
                continue
            with contextlib.suppress(OSError), os.scandir(service.path) as versions:
                for version in versions:
                    with contextlib.suppress(OSError), os.scandir(version.path) as files:
                        for file in files:
                            kind = _model_type(file.name)
                            if kind and file.is_file():
                                found.setdefault(kind, set()).add(service.name)
    return found


def _model_type(file_name: str) -> str | None:
    """The model type of a file botocore's loader reads: service-2 for service-2.json(.gz)."""
    for extension in (".json", ".json.gz"):
        if file_name.endswith(extension):
            return file_name.removesuffix(extension)
    return None


@contextlib.contextmanager
def models_loaded_once() -> Iterator[None]:
    """Every botocore loader in the process shares what it read from botocore's data folders.

    A loader caches the service list and the JSON models it reads for itself only, and the
    engine's process makes many: moto creates one per service model it needs, one per boto3
    session (a handler's, moto's region lookups for each new backend), and each loader walked
    the 450 service folders again for every model type it listed (50 ms a walk), then parsed
    the same large JSON models again (0.5-1 s in all of a demo's start-up). Here one walk of
    each data folder answers every listing (the same answers: a type's services are the union
    over the search path), and a file read with the same search path is done once per
    process. The data is read-only to botocore and moto (a model's extras are merged into it
    again, which changes nothing the second time). Loaders whose search paths differ (moto's,
    boto3's, the functions' with their cut models first) still read a file they share once: a
    file's data is kept by its bytes (a demo read 27 of its 54 model files twice, 67 ms).

    And each JSON file read is kept on disk as a pickle (certrelay.local.cache, keyed by the
    file's bytes and name): the next process loads the same ordered dictionaries 3-4 times
    faster than json parses them (0.3-0.45 s of every start-up went to parsing models).
    """
    shared = _SharedModels(Loader.load_data_with_path, JSONFileLoader._load_file)  # type: ignore[attr-defined]
    with (  # functions, not bound methods: each is called as the loader's own method
        mock.patch.object(
            Loader, "list_available_services", _method(shared.list_available_services)
        ),
        mock.patch.object(Loader, "load_data_with_path", _method(shared.load_data_with_path)),
        mock.patch.object(JSONFileLoader, "_load_file", _method(shared.load_file)),
    ):
        yield


def _method(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` as a plain function, which a class binds to its instance like a method."""

    def method(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return method


@contextlib.contextmanager
def commands_by_instance_skip_ec2() -> Iterator[None]:
    """SendCommand with InstanceIds and no Targets looks nothing up in EC2.

    moto 5.2.5 resolves a command's tag Targets through its EC2 backend even when there are none,
    and building that backend (its regions, AMIs and instance types) took 1-1.5 s of the first
    distribution to a server. Targets, when a command has them, are resolved as before.
    """
    original = SsmCommand._get_instance_ids_from_targets

    def instance_ids_from_targets(command: Any) -> list[str]:
        return list(original(command)) if command.targets else []

    with mock.patch.object(SsmCommand, "_get_instance_ids_from_targets", instance_ids_from_targets):
        yield


# -- AWS quotas moto does not enforce ---------------------------------------------------------
# The numbers AWS applies; the history limit is read on every check, so a test may lower it.
HISTORY_EVENT_LIMIT = 25_000  # events in one Standard execution's history (a hard quota)
PAYLOAD_LIMIT_BYTES = 262_144  # state/task/execution input or output, as UTF-8 JSON
EVENTBRIDGE_REQUEST_LIMIT_BYTES = 1_048_576  # the entries of one PutEvents request (since 2026-01)
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"


@dataclass
class _HistoryBudget:
    """One Standard execution's history: its top-level environment and, once spent, the error."""

    root: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    error: dict[str, str] | None = None


@contextlib.contextmanager
def history_capped_like_aws() -> Iterator[None]:
    """A Standard execution whose history reaches HISTORY_EVENT_LIMIT events fails, as on AWS.

    AWS: "Maximum execution history size: 25,000 events in a single execution history. If the
    execution history reaches this quota the execution will fail" (hard quota,
    https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). The failure is an
    ExecutionFailed event that is itself event 25,000, error `States.Runtime`, cause "The
    execution reached the maximum number of history events (25000)." (recorded on AWS in
    floci-io/floci#2734 and reported by many users, e.g. loads/ardere#86). moto records events
    without end, so a poll loop that would die on AWS ran on here.

    Events are counted where moto numbers them: event LIMIT-1 is the last one the machine makes;
    the next one is not recorded, the execution is set FAILED, and its ExecutionFailed takes id
    LIMIT. Nothing later is recorded (a Map iteration still running stops at its next state). A
    Catch cannot see this error (the engine forces it over any later one), as on AWS, where
    States.Runtime and the execution's end are beyond any state's reach. Cost: one dictionary
    attribute lookup and one uncontended lock per event (about 7 µs).
    """
    add_original = EventManager.add_event
    environment_original = ExecutionWorker._get_evaluation_environment
    set_error_original: Any = Environment.set_error
    ends = {
        HistoryEventType.ExecutionSucceeded,
        HistoryEventType.ExecutionFailed,
        HistoryEventType.ExecutionAborted,
        HistoryEventType.ExecutionTimedOut,
    }

    def environment(worker: Any) -> Any:
        env = environment_original(worker)
        if env.is_standard_workflow():  # Express workflows keep no history and have no limit
            cast(Any, env.event_manager).certrelay_budget = _HistoryBudget(env)
        return env

    def add_event(manager: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> Any:
        budget = getattr(manager, "certrelay_budget", None)
        if budget is None or event_type in ends:
            return add_original(manager, context, event_type, *args, **kwargs)
        with budget.lock:
            last = manager._event_id_gen._next_id - 1
            if budget.error is None and last + 1 < HISTORY_EVENT_LIMIT:
                return add_original(manager, context, event_type, *args, **kwargs)
            if budget.error is None:
                budget.error = {
                    "error": "States.Runtime",
                    "cause": "The execution reached the maximum number of history events "
                    f"({HISTORY_EVENT_LIMIT}).",
                }
                budget.root.set_error(budget.error)
            return last

    def set_error(env: Any, error: Any) -> None:
        budget = getattr(env.event_manager, "certrelay_budget", None)
        spent = budget.error if budget is not None else None
        set_error_original(env, spent or error)

    with (
        mock.patch.object(ExecutionWorker, "_get_evaluation_environment", environment),
        mock.patch.object(EventManager, "add_event", add_event),
        mock.patch.object(Environment, "set_error", set_error),
    ):
        yield


def payload_size(value: Any) -> int:
    """Bytes of `value` as Step Functions measures a payload: its compact JSON, UTF-8 encoded."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    )
    return len(text.encode("utf-8"))


@contextlib.contextmanager
def payloads_limited_like_aws() -> Iterator[None]:
    """Step Functions' 256 KiB payload quota where moto 5.2.5 misses it or applies it wrongly.

    AWS: "Maximum input or output size for a task, state, or execution: 256 KiB of data as a
    UTF-8 encoded string" (service-quotas.html; the history API's fields: "Maximum length of
    262144"). `States.DataLimitExceeded` is raised when a connector's output, a state's output,
    or a state's input after Parameters is larger, and "is a terminal error that can't be caught
    by the States.ALL error type" (concepts-error-handling.html); a Catch naming it does catch it.

    moto checks a state's output and a task's result but: counts 262,144 bytes as too many (and
    measures JSON with spaces); lets `States.ALL` catch and retry it; turns any `States.*` error
    that leaves a Map iteration or a Parallel branch into a `States.Runtime` ValueError; never
    checks a task's input after Parameters; and starts an execution on any input, where
    StartExecution refuses more than 262,144 bytes with a ValidationException (the API's
    `input` has "Length Constraints: Maximum length of 262144"). Cost: one JSON encoding of
    each Parameters result, next to the several moto already makes for the history.
    """

    class _RaisedErrorName(ErrorName):
        pass

    limited = StatesErrorNameType.StatesStatesDataLimitExceeded
    matches_original = error_equals_decl.ErrorEqualsDecl._eval_body
    parargs_original = Parargs._eval_body
    start_original: Any = StepFunctionsParserBackend.start_execution

    def is_within_size_quota(value: Any) -> bool:
        return payload_size(value) <= PAYLOAD_LIMIT_BYTES

    def raised_error_name(error_name: str | None = None) -> Any:
        """The name of an error leaving a branch: a States.* name stays one (moto raised)."""
        if error_name is not None and error_name.startswith("States."):
            try:
                return states_error_name.StatesErrorName.from_name(error_name)
            except ValueError:  # a States.* name moto does not know: keep it as raised
                return _RaisedErrorName(error_name)
        return CustomErrorName(error_name=error_name)

    def matches(decl: Any, env: Any) -> None:
        raised = env.stack[-1]
        if getattr(raised, "error_name", None) == DATA_LIMIT_EXCEEDED and not any(
            name.error_name == DATA_LIMIT_EXCEEDED for name in decl.error_names
        ):
            env.stack.pop()
            env.stack.append(False)  # only a Catch or Retry naming it matches it
            return
        matches_original(decl, env)

    def parameters(parargs: Any, env: Any) -> None:
        parargs_original(parargs, env)
        if is_within_size_quota(env.stack[-1]):
            return

        cause = (
            f"The state/task '{env.next_state_name}' has an input with a size exceeding "
            "the maximum number of bytes service limit."
        )
        raise FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=states_error_name.StatesErrorName(typ=limited),
                event_type=HistoryEventType.TaskFailed,
                event_details=cast(Any, EventDetails)(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=DATA_LIMIT_EXCEEDED, cause=cause
                    )
                ),
            )
        )

    def start_execution(
        backend: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        if execution_input is not None and payload_size(execution_input) > PAYLOAD_LIMIT_BYTES:
            raise StatesValidationException(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {PAYLOAD_LIMIT_BYTES}"
            )
        return start_original(backend, state_machine_arn, name, execution_input, trace_header)

    with (
        mock.patch.object(state_module, "is_within_size_quota", is_within_size_quota),
        mock.patch.object(state_task_lambda, "is_within_size_quota", is_within_size_quota),
        mock.patch.object(state_task_service, "is_within_size_quota", is_within_size_quota),
        mock.patch.object(iteration_worker, "CustomErrorName", raised_error_name),
        mock.patch.object(branches_decl, "CustomErrorName", raised_error_name),
        mock.patch.object(error_equals_decl.ErrorEqualsDecl, "_eval_body", matches),
        mock.patch.object(Parargs, "_eval_body", parameters),
        mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution),
    ):
        yield


def put_events_entry_size(entry: dict[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge counts it, for an entry (Source, DetailType, …)
    or an event as a rule delivers it (source, detail-type, …): certrelay.events.entry_size.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html
    """
    if "Source" in entry or "DetailType" in entry or "Detail" in entry:
        entry = {
            "source": entry.get("Source"),
            "detail-type": entry.get("DetailType"),
            "time": entry.get("Time"),
            "resources": entry.get("Resources") or [],
            **({"detail": entry["Detail"]} if entry.get("Detail") is not None else {}),
        }
    return entry_size(entry)


@contextlib.contextmanager
def bus_refuses_oversized_requests() -> Iterator[None]:
    """PutEvents refuses a request whose entries add up to more than EventBridge accepts.

    AWS: the entry size is computed as put_events_entry_size does, "the total entry size must
    be less than" the limit, and a request over it fails as a whole with ValidationException
    "Total size of the entries in the request is over the limit." (no per-entry ErrorCode: none
    of PutEventsResultEntry's codes is about size). The limit was 256 KB until 2026-01-29, when
    EventBridge raised it to 1 MB ("More room to build: serverless services now support payloads
    up to 1 MB", AWS Compute Blog); measured since: 1,048,576 bytes pass, one more is refused.
    moto accepts any size. Enter after bus_delivers_to_state_machines: nothing oversized is
    delivered.
    """
    original = EventsBackend.put_events

    def put_events(backend: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if sum(put_events_entry_size(entry) for entry in entries) > EVENTBRIDGE_REQUEST_LIMIT_BYTES:
            raise EventsValidationException(
                "Total size of the entries in the request is over the limit."
            )
        return original(backend, entries)

    with mock.patch.object(EventsBackend, "put_events", put_events):
        yield
