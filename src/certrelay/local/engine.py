"""The local engine: the stack of template.yaml, running in one process on an embedded AWS.

`LocalEngine` starts moto with its Step Functions interpreter on, translates and deploys
template.yaml, seeds a fleet, and routes events through the stack's own EventBridge rule
patterns to the real state machine, whose Lambda tasks run the real handlers in-process.
moto's EventBridge does not start Step Functions targets itself, so `send` does that part.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeGuard, cast

import boto3
import yaml
from botocore.exceptions import ClientError
from botocore.utils import parse_timestamp
from moto import mock_aws
from moto.acm.models import acm_backends
from moto.core.exceptions import AWSError
from moto.events.models import EventPattern
from moto.sns.models import sns_backends
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from certrelay.announcements import SOURCE
from certrelay.events import DETAIL_TYPES, EventKind
from certrelay.local import moto_fixes, moto_fixes_speed, org
from certrelay.local import reset as resetting
from certrelay.local.errors import EngineTimeout, EventRefused
from certrelay.local.fleet.seed import (
    Fleet,
    FleetError,
    Issuers,
    SeededCertificate,
    certificate_backend,
    load_fleet,
    reissue_certificate,
    renew_certificate,
    revoke_certificate,
    seed_certificates,
    seed_distribution_records,
)
from certrelay.local.fleet.servers import LocalFleetServers, seed_files
from certrelay.local.lambdas import LambdaRuntime
from certrelay.local.mock_config import configured_path, mocked_test_cases
from certrelay.local.org import (
    LocalOrganization,
    Members,
    all_servers,
    seed_accounts,
    server_places,
    start_members,
)
from certrelay.local.results import Execution, SendResult, SweepRun
from certrelay.local.stack import Stack, deploy
from certrelay.local.template import translate
from certrelay.profiles import load_profiles, load_profiles_file
from certrelay.reminders import days_until
from certrelay.text import iso_z

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"
STACK_NAME = "certrelay"
FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class LocalEngine:
    """A context manager: the whole stack, locally, for as long as the block runs."""

    def __init__(
        self,
        *,
        fleet: Fleet | None = None,
        template: Path = TEMPLATE,
        parameters: dict[str, str] | None = None,
        now: dt.datetime | None = None,
        clock_speed: float = 1.0,
        mock_config: Path | None = None,
        organization: LocalOrganization | None = None,
    ) -> None:
        self.fleet = fleet or load_fleet()
        # Organisation mode: the hub stack in organization.hub, member stacks in its members.
        self.organization = organization
        self.members = Members()
        if organization is not None:
            self.fleet = organization.hub_fleet(self.fleet)
            parameters = {**organization.hub_parameters(), **(parameters or {})}
        self.template_path = template
        self.parameters = {"FallbackOwnerEmail": self.fleet.fallback_owner, **(parameters or {})}
        self.now = now or dt.datetime.now(dt.UTC)
        # Task timeouts (the approval waits) and Wait states pass this many times faster.
        self.clock_speed = clock_speed
        # Step Functions Local's MockConfigFile: `<arn>#Case` runs test case Case (mock_config.py).
        self.mock_config = configured_path(mock_config)
        self.runtime = LambdaRuntime(self.fleet.region, self.fleet.account)
        self.stack: Stack | None = None
        self.certificates: dict[str, SeededCertificate] = {}
        self.servers = LocalFleetServers(Path("/nonexistent"), {}, client=self.client)
        self._clients: dict[tuple[str, str], Any] = {}  # client(): one per service and Region
        self._clients_lock = threading.Lock()
        self._issuers: Issuers | None = None
        self.executions: list[Execution] = []  # every execution this engine ran, in order
        # Every event put on the default bus (by the workflow, a function or the sweep), as
        # EventBridge delivers it, and the executions the stack's rules started from them.
        self.bus: list[dict[str, Any]] = []
        self.started_from_bus: list[tuple[str, str]] = []
        # Rule targets that could not start (EventBridge's FailedInvocations): (machine, why).
        self.failed_invocations: list[tuple[str, str]] = []
        self._exits = contextlib.ExitStack()
        self._sfn: Any = None
        self._counter = 0
        # Every history event and every execution's end bumps the generation and wakes the
        # waits (await_progress): nothing here polls.
        self._progress = threading.Condition()
        self._generation = 0
        self._ended: set[str] = set()
        self._baseline: resetting.Baseline | None = None  # what reset() returns to
        self._profiles: dict[str, Any] | None = None  # profiles(), read once

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> LocalEngine:
        try:
            self._start()
        except BaseException:
            self._exits.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exits.close()

    def _start(self) -> None:
        # moto logs every failed state at ERROR with a full object dump; the history has it.
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        self._exits.enter_context(moto_fixes.models_loaded_once())
        template = translate(self.template_path, self.parameters, self.fleet.region)
        if self.organization is None:
            self._exits.enter_context(
                moto_fixes.isolated_aws_environment(self.fleet.account, self.fleet.region)
            )
        else:
            self._exits.enter_context(
                moto_fixes.accounts_follow_credentials(self.fleet.account, self.fleet.region)
            )
        self._exits.enter_context(
            mock_aws(
                config={
                    "stepfunctions": {"execute_state_machine": True},
                    "lambda": {"use_docker": False},
                    "core": {"reset_boto3_session": True},
                }
            )
        )
        self._exits.enter_context(self.runtime.installed())
        self._exits.enter_context(moto_fixes.send_task_failure_keeps_its_cause())
        self._exits.enter_context(moto_fixes.closed_tasks_answer_timed_out())
        self._exits.enter_context(
            moto_fixes.bus_delivers_to_state_machines(self.bus.append, self._start_from_bus)
        )
        self._exits.enter_context(moto_fixes.bus_invokes_functions(self.runtime.invoke))
        self._exits.enter_context(moto_fixes.bus_refuses_oversized_requests())
        self._exits.enter_context(moto_fixes.history_capped_like_aws())
        self._exits.enter_context(moto_fixes.payloads_limited_like_aws())
        self._exits.enter_context(moto_fixes.acm_lists_in_pages())
        self._exits.enter_context(moto_fixes.definitions_parsed_once())
        self._exits.enter_context(
            moto_fixes.executions_announce_progress(self._announce, self._announce_end)
        )
        self._exits.enter_context(moto_fixes.kms_key_pairs_made_when_used())
        self._exits.enter_context(moto_fixes.interpreter_reuses_its_work())
        self._exits.enter_context(moto_fixes.commands_by_instance_skip_ec2())
        self._exits.enter_context(moto_fixes_speed.applied())
        if self.clock_speed != 1.0:
            self._exits.enter_context(moto_fixes.faster_clock(self.clock_speed))
        if self.fleet.profiles is not None:
            overlay = Path(self._exits.enter_context(tempfile.TemporaryDirectory()))
            (overlay / "profiles.yaml").write_text(
                yaml.safe_dump({"profiles": self.fleet.profiles}), encoding="utf-8"
            )
            self.runtime.opt_overlay = overlay
        self.stack = deploy(
            template,
            name=STACK_NAME,
            region=self.fleet.region,
            account=self.fleet.account,
            parameters=self.parameters,
            runtime=self.runtime,
            client=self.client,
        )
        if self.mock_config is not None:
            self._exits.enter_context(mocked_test_cases(self.mock_config, region=self.fleet.region))
        self._issuers = issuers = Issuers(self.fleet, self.now)
        self.certificates = seed_certificates(self.fleet, now=self.now, authorities=self._issuers)
        sandbox = Path(self._exits.enter_context(tempfile.TemporaryDirectory(prefix="certrelay-")))
        servers = self.fleet.servers if self.organization is None else all_servers(self.fleet)
        self.servers = LocalFleetServers(
            sandbox / "servers",
            {i: (s.name, s.reload_fails) for i, s in servers.items()},
            client=self.client,
        )
        self._exits.callback(self.servers.stop)
        self._exits.enter_context(self.servers.installed(self.fleet.region))
        self._seed_targets()
        if self.organization is not None:
            self.members = start_members(self, self.organization)
            self.servers.places = server_places(self.fleet)
            self.certificates.update(seed_accounts(self, issuers))
        if "DistributionRecordTable" in self.stack.resources:
            seed_distribution_records(
                self.certificates,
                self.profiles(),
                table=self.stack.ref("DistributionRecordTable"),
                region=self.fleet.region,
                now=self.now,
                client=self.client,
            )
        self._sfn = self.client("stepfunctions")
        self._exits.enter_context(self.runtime.environment())
        self.runtime.load_all()
        for api in self.stack.http_apis.values():
            api.start()
            self._exits.callback(api.stop)
        # Entered last, so it runs first at exit, while the mocks, servers and APIs still stand.
        self._exits.callback(self._handlers_end)
        self._baseline = resetting.baseline(self)

    def reset(self) -> None:
        """Back to the state start-up left, the stack still deployed (certrelay.local.reset)."""
        resetting.reset(self, self._baseline)

    def _handlers_end(self) -> None:
        """At exit: every running execution is stopped (ABORTED, as StopExecution does), no new
        handler runs, and the exit waits for the one running. A worker or handler thread left
        running would go on invoking through whatever runtime the process installs next (moto's
        Lambda hook is class-wide) and reach AWS through whatever mock, or none, it has then."""
        backend = stepfunctions_parser_backends[self.fleet.account][self.fleet.region]
        for execution in backend._get_executions(ExecutionStatus.RUNNING):
            backend.stop_execution(execution.exec_arn)
        still_running = self.runtime.close()
        if still_running is not None:
            logging.getLogger("certrelay.local").warning(
                "%s is still running past its function timeout; the engine stops without it",
                still_running,
            )

    def renew(self, name: str) -> SeededCertificate:
        """ACM's managed renewal of fleet certificate `name`: new key and certificate, same ARN."""
        seeded = self.certificates.get(name)
        if seeded is None or self._issuers is None:
            raise FleetError(f"unknown certificate {name!r}")
        renewed = renew_certificate(self.fleet, seeded, self._issuers, now=self.now)
        self.certificates[name] = renewed
        return renewed

    def revoke(self, name: str) -> SeededCertificate:
        """Revoke fleet certificate `name`, as ACM (or its private CA) would: status REVOKED."""
        seeded = self._seeded(name)
        revoke_certificate(self.fleet, seeded, now=self.now)
        return seeded

    def reissue(self, name: str, *, days_to_expiry: int) -> SeededCertificate:
        """Fleet certificate `name` again, new key and serial, NotAfter `days_to_expiry` days
        from now (negative: already expired)."""
        seeded = self._seeded(name)
        if self._issuers is None:
            raise FleetError("the engine is not started: use it as a context manager")
        reissued = reissue_certificate(
            self.fleet, seeded, self._issuers, now=self.now, days_to_expiry=days_to_expiry
        )
        self.certificates[name] = reissued
        return reissued

    def _seeded(self, name: str) -> SeededCertificate:
        seeded = self.certificates.get(name)
        if seeded is None:
            known = ", ".join(sorted(self.certificates)) or "none"
            raise FleetError(f"unknown certificate {name!r}: the fleet has {known}")
        return seeded

    def client(self, service: str, region: str | None = None) -> Any:
        """The engine's boto3 client for `service` (in the fleet's Region unless told), made
        the first time: the deploy, the seeding, the servers' installs and the engine's own
        calls share one per service (a client costs 3-10 ms to make, and is safe to share
        between threads; a demo made six of them twice)."""
        key = (service, region or self.fleet.region)
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = boto3.client(service, region_name=key[1])  # type: ignore[call-overload]
            return self._clients[key]

    def profiles(self) -> dict[str, Any]:
        """The profiles the stack runs with: the fleet's own, else config/profiles.yaml, as
        first read (validated once: start-up and every reset ask again; profiles are frozen)."""
        if self._profiles is None:
            if self.fleet.profiles is not None:
                self._profiles = load_profiles(yaml.safe_dump({"profiles": self.fleet.profiles}))
            else:
                self._profiles = load_profiles_file(ROOT / "config" / "profiles.yaml")
        return dict(self._profiles)

    def _seed_targets(self) -> None:
        """Create the profiles' target buckets; put today's certificate on every fleet server."""
        s3 = self.client("s3")
        profiles = self.profiles()
        for profile in profiles.values():
            for target in profile.targets:
                if target.kind == "s3":
                    s3.create_bucket(Bucket=target.bucket)
                    s3.put_bucket_versioning(
                        Bucket=target.bucket, VersioningConfiguration={"Status": "Enabled"}
                    )
        backend = acm_backends[self.fleet.account][self.fleet.region]
        for seeded in self.certificates.values():
            profile = profiles.get(seeded.spec.tags.get("certrelay:profile", ""))
            bundle = backend._certificates[seeded.arn]
            for target in profile.targets if profile else []:
                if target.kind != "server":
                    continue
                for instance in target.instances or []:
                    server = self.servers.servers.get(instance)
                    if server is None:
                        continue
                    spec = target.model_dump(mode="json")
                    seed_files(server, spec, bundle.cert, bundle.key, bundle.chain)
                    self.servers.start_listener(server, spec)

    # -- events in -----------------------------------------------------------------------------
    def send(self, event: dict[str, Any], *, wait_seconds: float = 30.0) -> SendResult:
        """Put one event on the bus: start every matching rule's state machine, wait for each."""
        matched, started = self.put_event(event)
        executions = [self.wait(arn, name=name, seconds=wait_seconds) for name, arn in started]
        return SendResult(event, matched, executions)

    def put_event(self, event: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
        """Start every matching rule's state machine: (rules matched, [(name, arn) started]).

        Raises EventRefused, having started nothing, for an event EventBridge would not take
        or whose size Step Functions would refuse as an execution's input.
        """
        stack = self._require_stack()
        size = moto_fixes.put_events_entry_size(event)
        if size > moto_fixes.EVENTBRIDGE_REQUEST_LIMIT_BYTES:
            raise EventRefused(
                f"EventBridge refuses this event: its entry is {size:,} bytes, "
                f"over the {moto_fixes.EVENTBRIDGE_REQUEST_LIMIT_BYTES:,} it accepts"
            )
        if self.organization is not None:
            return self._put_in_its_account(event)
        matched = [
            rule
            for rule in stack.rules
            if EventPattern.load(json.dumps(rule.pattern)).matches_event(cast(Any, event))
        ]
        size = moto_fixes.payload_size(_as_input(event))
        if size > moto_fixes.PAYLOAD_LIMIT_BYTES and any(r.state_machine_arns for r in matched):
            raise EventRefused(
                f"Step Functions refuses this event as an execution's input: it is {size:,} "
                f"bytes, over the {moto_fixes.PAYLOAD_LIMIT_BYTES:,} it accepts"
            )
        started: list[tuple[str, str]] = []
        for rule in matched:
            started += [self._start_execution(arn, event) for arn in rule.state_machine_arns]
        return [rule.logical_id for rule in matched], started

    def _put_in_its_account(self, event: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
        """Organisation mode: the event starts on the default bus of its own account and
        Region and reaches the hub's rules as EventBridge forwards it (or does not)."""
        before = len(self.started_from_bus)
        org.emit(event)
        started = self.started_from_bus[before:]
        matched = [
            rule.logical_id
            for rule in self._require_stack().rules
            if started
            and EventPattern.load(json.dumps(rule.pattern)).matches_event(cast(Any, event))
        ]
        return matched, started

    def _start_execution(self, machine_arn: str, event: dict[str, Any]) -> tuple[str, str]:
        """Start one execution on `event`, named after the event's id: (name, arn)."""
        self._counter += 1
        name = _execution_name(event, self._counter)
        arn = self._sfn.start_execution(
            stateMachineArn=machine_arn, name=name, input=_as_input(event)
        )["executionArn"]
        return name, str(arn)

    def start(
        self,
        execution_input: dict[str, Any],
        *,
        case: str | None = None,
        wait_seconds: float = 30.0,
    ) -> Execution:
        """Run the stack's state machine on `execution_input`; `case` names a mock test case."""
        machines = self._require_stack().state_machines.items()
        # hub mode adds the organisation sweep's machine: `start` runs the workflow's
        (machine_arn,) = [
            arn for logical_id, arn in machines if logical_id != "OrgSweepStateMachine"
        ]
        self._counter += 1
        name = f"{case or 'direct'}-{self._counter}-{uuid.uuid4().hex[:6]}"
        arn = self._sfn.start_execution(
            stateMachineArn=f"{machine_arn}#{case}" if case else machine_arn,
            name=name,
            input=json.dumps(execution_input),
        )["executionArn"]
        return self.wait(arn, name=name, seconds=wait_seconds)

    def fire_schedule(self, logical_id: str, *, wait_seconds: float = 60.0) -> SweepRun:
        """What EventBridge Scheduler does when the schedule is due: invoke its target once.

        Returns the target function's answer and every execution the events it put started.
        """
        schedule = self._require_stack().schedules.get(logical_id)
        if schedule is None:
            raise KeyError(f"the stack has no schedule {logical_id!r}")
        response = boto3.client("lambda", region_name=self.fleet.region).invoke(
            FunctionName=schedule.target_arn, Payload=schedule.input.encode()
        )
        answer = json.loads(response["Payload"].read() or b"null")
        return SweepRun(
            answer,
            response.get("FunctionError"),
            self.wait_for_bus_executions(seconds=wait_seconds),
        )

    def metrics(self) -> list[dict[str, Any]]:
        """The functions' Powertools metrics (EMF lines in their logs), summed per name and
        dimensions, as the dashboard would show them: [{name, dimensions, value}]."""
        totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for line in self.runtime.log_lines:
            if not line.startswith('{"_aws"'):
                continue
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                (dimensions,) = directive["Dimensions"]
                labels = tuple((d, str(document[d])) for d in dimensions if d != "service")
                for metric in directive["Metrics"]:
                    key = (metric["Name"], labels)
                    value = document[metric["Name"]]  # one value, or a list of them
                    added = sum(value) if isinstance(value, list) else float(value)
                    totals[key] = totals.get(key, 0.0) + added
        return [
            {"name": name, "dimensions": dict(labels), "value": value}
            for (name, labels), value in sorted(totals.items())
        ]

    def events_out(self) -> list[dict[str, Any]]:
        """The certrelay.* events the stack put on the default bus, in order."""
        return [event for event in self.bus if event.get("source") == SOURCE]

    def wait_for_bus_executions(self, *, seconds: float = 30.0) -> list[Execution]:
        """Wait for every execution a bus event started that has not been waited for yet."""
        done = {execution.arn for execution in self.executions}
        pending = [(name, arn) for name, arn in self.started_from_bus if arn not in done]
        return [self.wait(arn, name=name, seconds=seconds) for name, arn in pending]

    def _start_from_bus(self, machine_arn: str, event: dict[str, Any]) -> None:
        """A rule matched an event on the bus: start its state machine, as EventBridge does.

        A start Step Functions refuses fails the target, not the PutEvents that put the event.
        """
        try:
            self.started_from_bus.append(self._start_execution(machine_arn, event))
        except ClientError as error:
            self.failed_invocations.append((machine_arn, str(error)))

    def status(self, execution_arn: str) -> str:
        return str(self._sfn.describe_execution(executionArn=execution_arn)["status"])

    def _announce(self, ended: str | None = None) -> None:
        with self._progress:
            self._generation += 1
            if ended is not None:
                self._ended.add(ended)
            self._progress.notify_all()

    def _announce_end(self, execution_arn: str) -> None:
        """An execution's end, kept only if it is this deployment's: one an earlier engine in
        the process left parked on its task token (its thread ends at its timeout), or one
        stopped by a reset, ends later into this engine's patches; it wakes the waits but is
        not recorded. moto lists an execution before its thread starts, so none of ours is
        missed."""
        _, _, _, region, account, _ = (execution_arn.split(":", 6) + [""] * 6)[:6]
        backend = stepfunctions_parser_backends[account][region]
        ours = any(e.exec_arn == execution_arn for e in backend._get_executions())
        self._announce(execution_arn if ours else None)

    def ended(self, execution_arn: str) -> bool:
        """Whether the execution has ended (its status final and its history complete)."""
        with self._progress:
            return execution_arn in self._ended

    def await_progress(self, ready: Callable[[], bool], *, deadline: float) -> bool:
        """Wait until `ready()` holds, checking it again each time an execution records a
        history event or ends; False if the deadline (time.monotonic()) passes first."""
        while True:
            with self._progress:
                seen = self._generation
            if ready():
                return True
            with self._progress:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._generation == seen:  # nothing happened since `ready()` was asked
                    self._progress.wait(remaining)

    def wait_for_state(self, execution_arn: str, state: str, *, seconds: float = 30.0) -> None:
        """Wait until the execution has entered `state` (or ended), with a deadline."""
        deadline = time.monotonic() + seconds
        history: list[dict[str, Any]] = []

        def entered_or_ended() -> bool:
            nonlocal history
            history = self.history(execution_arn)
            return state in _entered_states(history) or self.ended(execution_arn)

        if not self.await_progress(entered_or_ended, deadline=deadline):
            raise EngineTimeout(
                f"{state!r} not entered after {seconds:.0f}s; states so far: "
                f"{' -> '.join(_entered_states(history))}"
            )
        if state not in _entered_states(history):
            raise EngineTimeout(f"execution ended before entering {state!r}")

    def approval_url(self) -> str:
        """Where the stack's approval pages are served locally."""
        stack = self._require_stack()
        (api,) = stack.http_apis.values()
        return api.url

    def wait(self, execution_arn: str, *, name: str, seconds: float) -> Execution:
        """Wait until the execution is no longer RUNNING, or fail loudly at the deadline."""
        deadline = time.monotonic() + seconds
        self.await_progress(lambda: self.ended(execution_arn), deadline=deadline)
        described = self._sfn.describe_execution(executionArn=execution_arn)
        if described["status"] not in FINAL:
            states = _entered_states(self.history(execution_arn))
            raise EngineTimeout(
                f"execution {name} still {described['status']} after {seconds:.0f}s; "
                f"states so far: {' -> '.join(states)}"
            )
        history = self.history(execution_arn)
        output = described.get("output")
        execution = Execution(
            name=name,
            arn=execution_arn,
            status=described["status"],
            states=_entered_states(history),
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
            history=history,
        )
        self.executions.append(execution)
        return execution

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's history events, as GetExecutionHistory returns them.

        Read from moto's Step Functions backend, with the timestamps parsed as botocore parses
        them: the same events, without serializing the whole history through the API and
        parsing it back (0.05 s instead of 0.4 s over the demo's eight executions). An ARN moto
        does not know goes through the API, which raises AWS's error for it.
        """
        _, _, _, region, account, *_ = [*execution_arn.split(":"), "", "", "", "", ""]
        try:
            backend = stepfunctions_parser_backends[account][region]
            history = backend.get_execution_history(execution_arn)["events"]
        except (KeyError, AWSError):  # unknown execution, account or Region: ask the API
            events = self._history_from_api(execution_arn)
        else:
            events = [dict(event) for event in history]  # a deep copy of moto's: ours to change
            for event in events:
                event["timestamp"] = _timestamp(event["timestamp"])
        return events

    def _history_from_api(self, execution_arn: str) -> list[dict[str, Any]]:
        pages = self._sfn.get_paginator("get_execution_history").paginate(
            executionArn=execution_arn, PaginationConfig={"PageSize": 1000}
        )
        return [event for page in pages for event in page["events"]]

    # -- what happened -----------------------------------------------------------------------
    def notifications(self) -> list[dict[str, Any]]:
        """Every SNS message the stack published, in order: the local outbox."""
        backend = sns_backends[self.fleet.account][self.fleet.region]
        outbox = []
        for topic in backend.topics.values():
            for _message_id, body, subject, attributes, _group in topic.sent_notifications:
                flat = {k: v.get("Value") for k, v in (attributes or {}).items()}
                outbox.append(
                    {
                        "subject": subject,
                        "body": body,
                        "recipient": flat.get("recipient"),
                        "attributes": flat,
                    }
                )
        return outbox

    def findings(self) -> list[dict[str, Any]]:
        """Security Hub findings the stack raised: id, problem, severity, record state."""
        hub = boto3.client("securityhub", region_name=self.fleet.region)
        found = []
        for page in hub.get_paginator("get_findings").paginate():
            for finding in page["Findings"]:
                found.append(
                    {
                        "id": finding["Id"],
                        "problem": finding.get("ProductFields", {}).get("certrelay/problem"),
                        "severity": finding["FindingProviderFields"]["Severity"]["Label"],
                        "status": finding["RecordState"],
                    }
                )
        return found

    def certificate_event(self, event: dict[str, Any], name: str) -> dict[str, Any]:
        """Re-stamp `event` as ACM would send it for fleet certificate `name` right now."""
        return restamp(event, self._seeded(name), self.fleet, now=self.now)

    def reported_event(self, event: dict[str, Any], name: str) -> dict[str, Any]:
        """Bring fleet certificate `name` into the state `event` reports, as it would be on AWS
        when ACM sends that event, then re-stamp the event for it (`local run --cert`).

        Revoked: revoked. Expired: NotAfter in the past. Available RENEWAL or REIMPORT, and
        Rotated: a new certificate (new serial, new NotAfter). Available ISSUANCE or IMPORT: a
        new one only if the current one is revoked or expired. Approaching Expiration and
        Renewal Action Required with DaysToExpiry d: NotAfter d days from now. What cannot be
        brought about (the event's type against the certificate's) is left for triage to
        report as inconsistent.
        """
        seeded = self._seeded(name)
        raw_detail = event.get("detail")
        detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
        kind = DETAIL_TYPES.get(str(event.get("detail-type")))
        revoked = self._status(seeded) == "REVOKED"
        days = days_until(seeded.not_after, self.now)
        unusable = revoked or days < 0
        if kind is EventKind.REVOKED and not revoked:
            self.revoke(name)
        elif kind is EventKind.EXPIRED and days >= 0:
            self.reissue(name, days_to_expiry=-1)
        elif kind is EventKind.ROTATED or (
            kind is EventKind.AVAILABLE and (detail.get("Action") in _RENEWING or unusable)
        ):
            self.renew(name)
        elif kind in (EventKind.APPROACHING_EXPIRATION, EventKind.RENEWAL_ACTION_REQUIRED):
            wanted = detail.get("DaysToExpiry")
            if _is_day_count(wanted) and (wanted != days or unusable):
                self.reissue(name, days_to_expiry=wanted)
        return self.certificate_event(event, name)

    def _status(self, seeded: SeededCertificate) -> str:
        return str(certificate_backend(seeded.arn)._certificates[seeded.arn].status)

    def _require_stack(self) -> Stack:
        if self.stack is None:
            raise RuntimeError("the engine is not started: use it as a context manager")
        return self.stack


_RENEWING = ("RENEWAL", "REIMPORT")


def _is_day_count(value: object) -> TypeGuard[int]:
    """A DaysToExpiry a fleet certificate can take (not a bool, within the fleet's range)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3650


def restamp(
    event: dict[str, Any], seeded: SeededCertificate, fleet: Fleet, *, now: dt.datetime
) -> dict[str, Any]:
    """The event as ACM would send it for `seeded` at `now`; every other field is kept."""
    stamped: dict[str, Any] = json.loads(json.dumps(event))
    _, _, _, region, account, _ = seeded.arn.split(":", 5)
    stamped["resources"] = [seeded.arn]
    stamped["account"] = account  # the certificate's own: the fleet's, or in an
    stamped["region"] = region  # organisation a member account's
    stamped["time"] = iso_z(now)
    detail = stamped.get("detail")
    if isinstance(detail, dict):
        facts = {
            "DaysToExpiry": seeded.spec.days_to_expiry,
            "CertificateExpirationDate": iso_z(seeded.not_after),
            "CommonName": seeded.spec.domain,
            "CertificateType": seeded.spec.type,
            "InUse": seeded.spec.in_use,
        }
        detail.update({k: v for k, v in facts.items() if k in detail})
    return stamped


def _timestamp(value: Any) -> dt.datetime:
    """A history event's timestamp as botocore parses it. moto writes ISO 8601 in UTC ("…Z"),
    which datetime reads directly: dateutil's general parser took 85 µs an event."""
    if isinstance(value, str) and value.endswith("Z"):
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(value[:-1]).replace(tzinfo=dt.UTC)
    return parse_timestamp(value)


def _as_input(event: dict[str, Any]) -> str:
    """The event as EventBridge hands it to StartExecution: compact JSON."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def _entered_states(history: list[dict[str, Any]]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]


def _execution_name(event: dict[str, Any], counter: int) -> str:
    event_id = re.sub(r"[^A-Za-z0-9_-]", "", str(event.get("id", "")))[:36] or "event"
    return f"{event_id}-{counter}-{uuid.uuid4().hex[:6]}"
