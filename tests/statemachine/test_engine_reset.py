"""`LocalEngine.reset()`: after a full run, the engine is observably the one start-up left.

GIVEN a started engine, WHEN a run approves and distributes a renewal, raises a finding, leaves
an approval waiting, revokes a certificate and makes things beside the stack, and the engine is
reset, THEN every moto backend, the engine's own records, the servers' files and what the APIs
list are as they were right after start-up (only the re-seeded certificates' keys, serials and
ARNs are new), and the same run gives the same result again.

The comparison walks every moto backend the process has made (not a list of services someone
thought of), so a store reset() does not clear shows up here as a difference.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import stat
from collections.abc import Iterator
from secrets import token_hex
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from moto.core.base_backend import BackendDict

from certrelay.local import human
from certrelay.local.engine import LocalEngine
from tests.statemachine.conftest import EVENTS, assert_no_secrets, send

WEB = "web-private"
ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # uuid
)
VALUES = (str, bytes, int, float, bool, type(None), dt.datetime, dt.date)
DEPTH = 5  # backend -> collection -> resource -> its collections -> their entries


def shape(value: Any, depth: int = DEPTH) -> Any:
    """The structure of `value`: keys (ids normalised) and lengths of every collection, the
    attributes of moto's and certrelay's objects, to `depth`; a plain value by its type only
    (times, serials and random values differ between two starts as well)."""
    if isinstance(value, VALUES):
        return type(value).__name__
    if isinstance(value, dict):
        if depth <= 0:
            return ("dict", len(value))
        return {ID.sub("<id>", str(k)): shape(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        if depth <= 0:
            return ("list", len(value))
        return sorted(json.dumps(shape(v, depth - 1), sort_keys=True) for v in value)
    module = type(value).__module__ or ""
    if depth > 0 and hasattr(value, "__dict__") and module.startswith(("moto", "certrelay")):
        return {k: shape(v, depth - 1) for k, v in vars(value).items()}
    return type(value).__name__


def backends() -> dict[str, Any]:
    """Every moto backend the process has made, by service, account and Region."""
    found = {}
    for backend_dict in BackendDict._instances:  # type: ignore[misc]
        for account, region, backend in backend_dict.iter_backends():
            found[f"{backend_dict.service_name}/{account}/{region}"] = backend
    return found


def world(engine: LocalEngine, made_at_start: set[str] | None = None) -> dict[str, Any]:
    """Everything a test could observe of the engine, as shapes and API listings. A backend
    first used after `made_at_start` counts only if it differs from a new one."""
    moto_shapes = {}
    for key, backend in backends().items():
        if made_at_start is not None and key not in made_at_start:
            new = type(backend)(backend.region_name, backend.account_id)  # as moto makes it
            if shape(backend) == shape(new):
                continue  # first used since start-up, and as moto makes it: nothing to see
        moto_shapes[key] = shape(backend)
    own = {
        name: shape(value, 3)
        for name, value in vars(engine).items()
        if name not in ("_exits", "_progress", "_sfn", "_issuers", "_baseline", "now")
    }
    files = {
        server.name: sorted(
            (str(p.relative_to(server.sandbox)), stat.S_IMODE(p.stat().st_mode), p.is_dir())
            for p in server.sandbox.rglob("*")
        )
        for server in engine.servers.servers.values()
    }
    return {"moto": moto_shapes, "engine": own, "files": files, "apis": listed(engine)}


def listed(engine: LocalEngine) -> dict[str, Any]:
    """What the stack's services list, through the APIs, with values where they are stable."""
    region = engine.fleet.region
    client = boto3.client
    ddb, s3 = client("dynamodb", region_name=region), client("s3", region_name=region)
    secrets = client("secretsmanager", region_name=region)
    sfn, ssm = client("stepfunctions", region_name=region), client("ssm", region_name=region)
    sqs, acm = client("sqs", region_name=region), client("acm", region_name=region)
    tables = {name: ddb.scan(TableName=name)["Count"] for name in ddb.list_tables()["TableNames"]}
    buckets = {}
    for bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        versions = s3.list_object_versions(Bucket=bucket)
        buckets[bucket] = {
            "objects": len(versions.get("Versions", []) + versions.get("DeleteMarkers", [])),
            "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        }
    secret_values = {
        s["Name"]: secrets.get_secret_value(SecretId=s["ARN"])["SecretString"]
        for s in secrets.list_secrets()["SecretList"]
    }
    machines = {
        m["name"]: len(sfn.list_executions(stateMachineArn=m["stateMachineArn"])["executions"])
        for m in sfn.list_state_machines()["stateMachines"]
    }
    queues = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]
        for url in sqs.list_queues().get("QueueUrls", [])
    }
    certificates = sorted(
        (
            c["DomainName"],
            c["Status"],
            c["Type"],
            (c["NotAfter"] - engine.now).days if "NotAfter" in c else None,
        )
        for c in acm.list_certificates(
            Includes={"keyTypes": ["EC_prime256v1", "RSA_2048"]},
            CertificateStatuses=["ISSUED", "EXPIRED", "REVOKED", "PENDING_VALIDATION"],
        )["CertificateSummaryList"]
    )
    return {
        "tables": tables,
        "buckets": buckets,
        "secrets": secret_values,
        "executions": machines,
        "commands": len(ssm.list_commands()["Commands"]),
        "queues": queues,
        "certificates": certificates,
        "outbox": engine.notifications(),
        "findings": engine.findings(),
        "bus": engine.bus,
    }


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            where = f"{path}/{key}"
            if key not in before:
                found.append(f"+ {where}")
            elif key not in after:
                found.append(f"- {where}")
            else:
                found += differences(before[key], after[key], where)
        return found
    return [] if before == after else [f"~ {path}: {str(before)[:200]} -> {str(after)[:200]}"]


def full_run(engine: LocalEngine) -> list[tuple[str, list[str], str]]:
    """A renewal approved and distributed (bucket, servers), a finding, a revocation, a
    renewal left waiting for its approver, and things made beside the stack."""
    engine.renew(WEB)
    event = json.loads((EVENTS / "available.json").read_text(encoding="utf-8"))
    (distributed,) = human.send_and_decide(
        engine, engine.certificate_event(event, WEB), "approve", reason="go"
    ).executions
    expired = send(engine, "expired.json", "expired-imported").executions
    revoked = engine.reported_event(
        json.loads((EVENTS / "revoked.json").read_text(encoding="utf-8")), "public-site"
    )
    finding = engine.send(revoked).executions
    assert_no_secrets(engine, engine.executions)
    engine.renew("api-edge")
    waiting = engine.certificate_event(event, "api-edge")
    _, started = engine.put_event(waiting)
    engine.wait_for_state(started[0][1], "Request Approval")
    region = engine.fleet.region
    boto3.client("s3", region_name=region).create_bucket(Bucket="made-by-a-test")
    secrets = boto3.client("secretsmanager", region_name=region)
    secrets.create_secret(Name="made-by-a-test", SecretString=token_hex(20))
    for secret in secrets.list_secrets()["SecretList"]:
        if secret["Name"] != "made-by-a-test":
            secrets.put_secret_value(SecretId=secret["ARN"], SecretString=token_hex(20))
    boto3.client("dynamodb", region_name=region).create_table(
        TableName="made-by-a-test",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("sqs", region_name=region).create_queue(QueueName="made-by-a-test")
    # the states entered and the last: how often the install poll loops, and in which order
    # the Map's iterations enter theirs, is timing
    runs = [distributed, *expired, *finding]
    return [(e.status, sorted(set(e.states)), e.states[-1]) for e in runs]


@pytest.fixture(scope="module")
def started() -> Iterator[tuple[LocalEngine, dict[str, Any], set[str]]]:
    with LocalEngine(clock_speed=50) as engine:
        made = set(backends())
        yield engine, world(engine), made


def test_after_a_full_run_reset_leaves_what_start_up_left_and_the_run_goes_the_same_again(
    started: tuple[LocalEngine, dict[str, Any], set[str]],
):
    engine, at_start, made_at_start = started
    # GIVEN a full run left executions, items, objects, mail, findings, commands and more, and
    # installed a renewed certificate on every server
    first = full_run(engine)
    after_run = world(engine, made_at_start)
    assert len(differences(at_start, after_run)) > 20, "the run should leave things behind"
    # WHEN the engine is reset
    engine.reset()
    # THEN everything observable is as start-up left it
    found = differences(at_start, world(engine, made_at_start))
    assert found == [], "\n".join(found)
    # AND each server serves, and keeps on disk, the certificate ACM now holds for web-private
    acm = boto3.client("acm", region_name=engine.fleet.region)
    pem = acm.get_certificate(CertificateArn=engine.certificates[WEB].arn)["Certificate"]
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    for server in engine.servers.servers.values():
        assert server.path("/etc/ssl/web/cert.pem").read_text() == pem
        assert not server.path("/etc/ssl/web/cert.pem.bak").exists()
        for port in server.listeners:
            assert server.serving(port) == hashlib.sha256(der).hexdigest()
    # AND the same run gives the same result again
    again = full_run(engine)
    assert again == first, f"{first}\n!=\n{again}"
    assert first[0][0] == "SUCCEEDED"
    assert first[0][2] == "Renewal Distributed"


@pytest.mark.parametrize("change", ["environment", "parameters", "profiles"])
def test_reset_refuses_an_engine_whose_deployment_a_test_changed(
    started: tuple[LocalEngine, dict[str, Any], set[str]], change: str
):
    engine, _, _ = started
    function = next(iter(engine.runtime.functions.values()))
    assert engine.fleet.profiles is not None
    # GIVEN a test changed what the stack runs with: a function's environment, a parameter,
    # a profile
    changed = {
        "environment": (function.environment, "LOG_LEVEL"),
        "parameters": (engine.parameters, "ExpiryThresholdDays"),
        "profiles": (engine.fleet.profiles, "web"),
    }
    where, key = changed[change]
    kept = where.get(key)
    where[key] = "changed by a test"
    try:
        # WHEN the engine is reset THEN it refuses: the deployment is not start-up's any more
        with pytest.raises(RuntimeError, match="needs an engine of its own"):
            engine.reset()
    finally:
        if kept is None:
            del where[key]
        else:
            where[key] = kept
    engine.reset()  # as it was: reset again


def test_an_execution_this_deployment_does_not_hold_ends_without_being_recorded(
    started: tuple[LocalEngine, dict[str, Any], set[str]],
):
    """An execution an earlier engine in this process left parked on its task token, or one a
    reset stopped, ends later (at its timeout) into this engine's moto patches: it must not
    show as one of this engine's ended executions (a full run failed on exactly that once)."""
    engine, _, _ = started
    fleet = engine.fleet
    stale = f"arn:aws:states:{fleet.region}:{fleet.account}:execution:left-by-another:gone"

    engine._announce_end(stale)

    assert not engine.ended(stale)
    assert stale not in engine._ended
