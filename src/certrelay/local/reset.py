"""`LocalEngine.reset()`: the deployed stack kept, what a run left behind cleared, and what
start-up seeds seeded again, so one deployment serves many tests (issue 14, figure 4).

Deploying the stack on moto costs 0.5-1.5 s of CPU; a reset costs a fraction of that. After a
reset the engine is observably the engine `start` left (tests/statemachine/test_engine_reset.py
compares every moto backend, the engine's own records and the servers' files):

- *kept*, as deployed: every resource the stack created (tables, buckets and their
  configuration, keys, topics, queues, functions, state machines, rules, documents, secrets
  with their deployed values), the parameters, profiles, environment, clock speed, HTTP APIs
  (a reset refuses an engine whose fleet, parameters, clock speed or function environment
  changed since start-up: a test that changes those needs an engine of its own);
- *cleared*: every execution (a running one is stopped first, as the engine's exit does), table
  items, objects in the stack's buckets, messages sent or queued, SSM commands, findings,
  whatever a run created beside the stack (secrets, buckets, state machines, ... : any entry a
  moto backend gained since start-up), and the engine's own records (executions, events on
  the bus, invocations, log lines, install runs);
- *seeded again*, as `start` seeds them, at the engine's `now` moved on by the time passed:
  the fleet's certificates in ACM (new keys and serials, new ARNs), the profiles' target
  buckets, today's certificate on every server, the distribution records the fleet declares;
  the handlers are loaded again (a cold start, as a fresh engine's first invocation).

Organisation mode (member stacks in other accounts) is not covered: such engines are started
afresh.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.acm.models import acm_backends
from moto.core.base_backend import BackendDict, BaseBackend
from moto.dynamodb.models import dynamodb_backends
from moto.s3.models import s3_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from certrelay.local.errors import EngineTimeout
from certrelay.local.fleet.seed import Issuers, seed_certificates, seed_distribution_records

if TYPE_CHECKING:
    from certrelay.local.engine import LocalEngine

PARTITION = "aws"  # where moto keeps S3's backend (buckets are global)
QUIET_SECONDS = 30.0  # how long a reset waits for stopped executions and installs to end
SETTLE_SECONDS = 0.05  # a stopped execution is done once it has been this long without an event


@dataclass
class Baseline:
    """What start-up left, as a reset needs to find it again: for every moto backend of the
    engine's account, the keys of each dict attribute (and the length of each list); the stack
    secrets' fields; the buckets that are the profiles' targets."""

    entries: dict[tuple[str, str, str], dict[str, frozenset[Any] | int]] = field(
        default_factory=dict
    )
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    target_buckets: frozenset[str] = frozenset()
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))  # the engine's
    taken_at: float = field(default_factory=time.monotonic)
    deployment: str = ""  # what the stack was deployed with (`_deployment`)


def baseline(engine: LocalEngine) -> Baseline | None:
    """Record what a reset returns to; None for an organisation (reset covers one account)."""
    if engine.organization is not None:
        return None
    account = engine.fleet.account
    taken = Baseline(now=engine.now, deployment=_deployment(engine))
    for service, region, backend in _backends(account):
        taken.entries[service, region, type(backend).__name__] = _shape(backend)
    for arn, secret in secretsmanager_backends[account][engine.fleet.region].secrets.items():
        taken.secrets[arn] = copy.deepcopy(vars(secret))
    taken.target_buckets = frozenset(
        target.bucket
        for profile in engine.profiles().values()
        for target in profile.targets
        if target.kind == "s3" and target.bucket
    )
    return taken


def reset(engine: LocalEngine, taken: Baseline | None) -> None:
    """Bring a started engine back to the state start-up left it in (module docstring)."""
    if engine.organization is not None or taken is None or engine.stack is None:
        raise RuntimeError("reset needs a started single-account engine (not an organisation)")
    if _deployment(engine) != taken.deployment:
        raise RuntimeError(
            "reset: the engine's fleet, parameters, clock or function environment changed "
            "since start-up; a test that changes the deployment needs an engine of its own"
        )
    account, region = engine.fleet.account, engine.fleet.region
    _quiesce(engine)
    _empty_buckets(engine, taken)
    _forget_what_start_did_not_make(account, taken)
    _clear_data(account, region, taken)
    _forget_the_engines_records(engine)
    _seed_again(engine, taken)


def _deployment(engine: LocalEngine) -> str:
    """What the stack was deployed with and a reset keeps: the fleet (its profiles, certificates
    and servers), the parameters, the clock speed, each function's environment and handler."""
    functions = {
        name: [f.handler, str(f.code_dir), f.environment, f.timeout, f.memory]
        for name, f in engine.runtime.functions.items()
    }
    return json.dumps(
        [
            engine.fleet.model_dump(mode="json"),
            engine.parameters,
            engine.clock_speed,
            str(engine.mock_config),
            functions,
        ],
        sort_keys=True,
        default=str,
    )


def _backends(account: str) -> Iterator[tuple[str, str, BaseBackend]]:
    instances: list[BackendDict[Any]] = BackendDict._instances  # type: ignore[misc]
    for backends in list(instances):
        for backend_account, backend_region, backend in list(backends.iter_backends()):
            if backend_account == account:
                yield backends.service_name, backend_region, backend


def _shape(backend: BaseBackend) -> dict[str, frozenset[Any] | int]:
    shape: dict[str, frozenset[Any] | int] = {}
    for name, value in vars(backend).items():
        if isinstance(value, dict):
            shape[name] = frozenset(value)
        elif isinstance(value, list):
            shape[name] = len(value)
    return shape


def _quiesce(engine: LocalEngine) -> None:
    """Every running execution stopped (ABORTED) and ended, every install thread and handler
    done: nothing writes while the stores are cleared."""
    account, region = engine.fleet.account, engine.fleet.region
    backend = stepfunctions_parser_backends[account][region]
    running = [e.execution_arn for e in backend._get_executions(ExecutionStatus.RUNNING)]
    for arn in running:
        with contextlib.suppress(Exception):  # it may have ended meanwhile
            backend.stop_execution(arn)
    deadline = time.monotonic() + QUIET_SECONDS
    if running:  # a stopped execution records its last events; one waiting on a task token
        _settle(engine, deadline)  # stays parked until its timeout, as at the engine's exit
    for thread in list(engine.servers._threads):
        thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():
            raise EngineTimeout(f"reset: an install still running after {QUIET_SECONDS}s")
    engine.servers._threads.clear()
    lock = engine.runtime._lock
    if not lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
        raise EngineTimeout(f"reset: a handler still running after {QUIET_SECONDS}s")
    lock.release()


def _settle(engine: LocalEngine, deadline: float) -> None:
    """Until no execution has recorded a history event for SETTLE_SECONDS."""
    while time.monotonic() < deadline:
        with engine._progress:
            seen = engine._generation
            engine._progress.wait(SETTLE_SECONDS)
            if engine._generation == seen:
                return
    raise EngineTimeout(f"reset: stopped executions still running after {QUIET_SECONDS}s")


def _empty_buckets(engine: LocalEngine, taken: Baseline) -> None:
    """Every object version out of every bucket (through the API, so S3's own indexes and
    object tags go with them); buckets the stack did not create are deleted (the profiles'
    targets are made again with the fleet)."""
    s3, backend = engine.client("s3"), s3_backends[engine.fleet.account][PARTITION]
    (kept,) = [
        entries.get("buckets", frozenset())
        for (service, _, _), entries in taken.entries.items()
        if service == "s3"
    ]
    assert isinstance(kept, frozenset)
    for bucket in list(backend.buckets):
        stored = backend.buckets[bucket]
        if stored.keys or stored.multiparts:  # else nothing to list (and delete) in it
            _empty(s3, bucket)
        if bucket not in kept or bucket in taken.target_buckets:
            s3.delete_bucket(Bucket=bucket)
    # moto 5.2.5 keeps a deleted object version's tags: every object is gone, so are they
    tags = backend.tagger.tags
    for arn in [arn for arn in tags if arn.startswith("arn:aws:s3:::") and "/" in arn]:
        del tags[arn]


def _empty(s3: Any, bucket: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        if versions:
            s3.delete_objects(
                Bucket=bucket,
                Delete={
                    "Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions],
                    "Quiet": True,
                },
            )
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def _forget_what_start_did_not_make(account: str, taken: Baseline) -> None:
    """Every entry a backend gained since start-up goes (a secret, a state machine, a command,
    a queue, ...); a backend first used since start-up is made new, as moto makes it."""
    for service, region, backend in _backends(account):
        shape = taken.entries.get((service, region, type(backend).__name__))
        if shape is None:
            backend.reset()
            continue
        for name, value in vars(backend).items():
            kept = shape.get(name)
            if isinstance(value, dict) and isinstance(kept, frozenset):
                for key in [k for k in value if k not in kept]:
                    del value[key]
            elif isinstance(value, list) and isinstance(kept, int):
                del value[kept:]


def _clear_data(account: str, region: str, taken: Baseline) -> None:
    """The data inside what the stack created: items, messages, executions, certificates."""
    for table in dynamodb_backends[account][region].tables.values():
        table.items.clear()
    for topic in sns_backends[account][region].topics.values():
        topic.sent_notifications.clear()
    for queue in sqs_backends[account][region].queues.values():
        with queue._messages_lock:
            queue._messages.clear()
            queue._pending_messages.clear()
            queue.deleted_messages.clear()
    for machine in stepfunctions_parser_backends[account][region].state_machines:
        machine.executions.clear()
    acm_backends[account][region]._certificates.clear()
    secrets = secretsmanager_backends[account][region].secrets
    for arn, fields in taken.secrets.items():
        secret = secrets[arn]
        vars(secret).clear()
        vars(secret).update(copy.deepcopy(fields))


def _forget_the_engines_records(engine: LocalEngine) -> None:
    # cleared in place: moto_fixes hold these lists' bound methods
    for records in (engine.executions, engine.bus, engine.started_from_bus):
        records.clear()
    engine.failed_invocations.clear()
    engine._counter = 0
    with engine._progress:
        engine._ended.clear()
    runtime = engine.runtime
    runtime.invocations.clear()
    runtime._log_start = len(runtime.log_lines) + runtime._log_start
    servers = engine.servers
    servers.runs.clear()
    servers.commands.clear()


def _seed_again(engine: LocalEngine, taken: Baseline) -> None:
    """What `LocalEngine._start` seeds after deploying, again, the engine's clock moved on by
    the time since start-up (a default engine's `now` is the current time again)."""
    stack = engine.stack
    assert stack is not None
    engine.now = taken.now + dt.timedelta(seconds=time.monotonic() - taken.taken_at)
    engine._issuers = Issuers(engine.fleet, engine.now)
    engine.certificates = seed_certificates(
        engine.fleet, now=engine.now, authorities=engine._issuers
    )
    for server in engine.servers.servers.values():
        shutil.rmtree(server.sandbox, ignore_errors=True)
        for listener in server.listeners.values():
            with listener._lock:
                listener._context, listener._loaded_flag = None, -1.0
    engine._seed_targets()
    if "DistributionRecordTable" in stack.resources:
        seed_distribution_records(
            engine.certificates,
            engine.profiles(),
            table=stack.ref("DistributionRecordTable"),
            region=engine.fleet.region,
            now=engine.now,
            client=engine.client,
        )
    for function in engine.runtime.functions.values():
        function.module = None
    engine.runtime.load_all()
