"""Sweep benchmark: python bench/sweep.py [--certificates 10000] [--json].

Imports N extra certificates into the local stack's ACM (one EC P-256 key, NotAfter spread
evenly over the next 400 days, so about 1.5 % sit on a threshold day), then fires the stack's
schedule the way EventBridge Scheduler does and times the sweep function's invocation: paging
through ListCertificates (1,000 a page) and putting the due reminders on the bus. Target: < 60 s
for 10,000 certificates.

The executions the reminders start are held until the sweep returns, then started, waited for
and reported (not timed): on AWS they run elsewhere, while here each one's interpreter thread
(moto parses the ASL per execution) would take the same two cores as the sweep.
`--concurrent` starts them at once instead and times the sweep that way too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certrelay.local.engine import LocalEngine

TARGET_SECONDS = 60.0
SCHEDULE = "SweepFunctionDaily"
SPREAD_DAYS = 400


def import_certificates(engine: LocalEngine, count: int) -> float:
    """Import `count` self-signed certificates straight into the embedded ACM; seconds taken."""
    from moto.acm.models import acm_backends

    backend = acm_backends[engine.fleet.account][engine.fleet.region]
    return import_into([(backend, lambda index: f"host-{index}.bench.example")], count, engine.now)


def import_into(
    backends: Iterable[tuple[Any, Callable[[int], str]]], count: int, now: dt.datetime
) -> float:
    """Import `count` self-signed certificates into each moto ACM backend, each named by its
    function of the index (one EC P-256 key, NotAfter spread over SPREAD_DAYS); seconds taken."""
    started = time.perf_counter()
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for backend, name_of in backends:
        for index in range(count):
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name_of(index))])
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=index % SPREAD_DAYS, hours=12))
                .sign(key, hashes.SHA256())
            )
            pem = certificate.public_bytes(serialization.Encoding.PEM)
            backend.import_certificate(pem, key_pem, chain=None, arn=None, tags=[])
    return time.perf_counter() - started


class HeldStarts:
    """Stands in for the engine's Step Functions client while the sweep runs: keeps the starts."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.held: list[dict[str, Any]] = []

    def start_execution(self, **request: Any) -> dict[str, Any]:
        self.held.append(request)
        return {
            "executionArn": f"{request['stateMachineArn']}:{request['name']}".replace(
                ":stateMachine:", ":execution:"
            )
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def measure(count: int, *, concurrent: bool) -> dict[str, Any]:
    import boto3

    with LocalEngine(clock_speed=50) as engine:
        seeding = import_certificates(engine, count)
        schedule = engine.stack.schedules[SCHEDULE] if engine.stack else None
        assert schedule is not None
        client = boto3.client("lambda", region_name=engine.fleet.region)
        sfn = engine._sfn
        held = HeldStarts(sfn)
        if not concurrent:
            engine._sfn = held
        started = time.perf_counter()
        response = client.invoke(FunctionName=schedule.target_arn, Payload=b"{}")
        sweep_seconds = time.perf_counter() - started
        engine._sfn = sfn
        for request in held.held:
            sfn.start_execution(**request)
        answer = json.loads(response["Payload"].read())
        waited = time.perf_counter()
        executions = engine.wait_for_bus_executions(seconds=600)
        return {
            "certificates": count,
            "import_seconds": round(seeding, 2),
            "sweep_seconds": round(sweep_seconds, 2),
            "listed": answer.get("listed"),
            "due": answer.get("due"),
            "sent": answer.get("sent"),
            "error": response.get("FunctionError"),
            "executions": len(executions),
            "executions_succeeded": sum(e.status == "SUCCEEDED" for e in executions),
            "executions_seconds": round(time.perf_counter() - waited, 2),
            "target_seconds": TARGET_SECONDS,
            "executions_started": "during the sweep" if concurrent else "after the sweep",
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--concurrent", action="store_true", help="start the executions during the sweep"
    )
    args = parser.parse_args()
    result = measure(args.certificates, concurrent=args.concurrent)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        verdict = "ok" if result["sweep_seconds"] < TARGET_SECONDS else "OVER"
        print(
            f"sweep of {result['listed']} certificates: {result['sweep_seconds']:.2f} s "
            f"(target < {TARGET_SECONDS:g} s: {verdict}); {result['due']} due, "
            f"{result['sent']} reminders put, {result['executions']} executions started "
            f"{result['executions_started']} "
            f"({result['executions_succeeded']} succeeded, {result['executions_seconds']:.1f} s "
            f"more); importing the certificates took {result['import_seconds']:.1f} s"
        )
    return 0 if result["error"] is None and result["sent"] == result["due"] else 1


if __name__ == "__main__":
    sys.exit(main())
