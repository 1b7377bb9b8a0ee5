"""Exportable public certificates and the export cost guard, through the whole ASL.

GIVEN a fleet whose profile `public` feeds a partner bucket with public (AMAZON_ISSUED)
certificates, WHEN ACM renews one requested with Options.Export ENABLED, THEN it is exported once
and distributed like a private one; a second run for the same serial reuses the bundle and still
distributes; a profile at its daily cap exports nothing and tells owners and operations; and a
public certificate ACM does not let export keeps its old route (the owners are told, no export).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from certrelay.cli.report import distributions
from certrelay.local.engine import LocalEngine
from certrelay.local.fleet.seed import FleetCertificate, load_fleet
from certrelay.local.results import Execution
from tests.statemachine.conftest import EVENTS, SharedEngine

PARTNER = "partner-public-bundles"
OWNER = "site-team@example.com"
EXPORT_FAILURE = [
    "Export Certificate",
    "Report Export Cap",
    "Notify Export Failure",
    "Raise Export Finding",
    "Forget Failed Export",
    "Export Failed",
]


def _public(exportable: bool, domain: str) -> FleetCertificate:
    return FleetCertificate(
        type="AMAZON_ISSUED",
        domain=domain,
        days_to_expiry=20,
        validity_days=198,
        exportable=exportable,
        tags={"certrelay:owner": OWNER, "certrelay:profile": "public"},
    )


@pytest.fixture(scope="module")
def shared_engine() -> Iterator[SharedEngine]:
    """The module's engine (conftest's `engine` resets it for each test): the demo fleet and
    four public certificates with a profile that exports at most twice a day."""
    shared = SharedEngine(_engine_with_public_certificates)
    yield shared
    shared.stop()


def _engine_with_public_certificates() -> LocalEngine:
    fleet = load_fleet()
    assert fleet.profiles is not None
    fleet.profiles["public"] = {
        "owners": [OWNER],
        "approval": "auto",
        "exports_per_day": 2,
        "targets": [{"kind": "s3", "bucket": PARTNER, "prefix": "site/"}],
    }
    fleet.certificates |= {
        "shop": _public(True, "shop.example.com"),
        "blog": _public(True, "blog.example.com"),
        "docs": _public(True, "docs.example.com"),
        "plain": _public(False, "plain.example.com"),
    }
    return LocalEngine(fleet=fleet, clock_speed=50)


@pytest.fixture
def acm_exports(engine: LocalEngine) -> Iterator[list[str]]:
    """The ARNs ACM's ExportCertificate was called with, in order."""
    from moto.acm.models import acm_backends

    backend = acm_backends[engine.fleet.account][engine.fleet.region]
    real: Callable[..., Any] = backend.export_certificate
    calls: list[str] = []

    def counted(certificate_arn: str, passphrase: str) -> Any:
        calls.append(certificate_arn)
        return real(certificate_arn, passphrase)

    backend.export_certificate = counted  # type: ignore[method-assign]
    yield calls
    backend.export_certificate = real  # type: ignore[method-assign]


def renewed(engine: LocalEngine, name: str) -> Execution:
    """ACM renews fleet certificate `name` and says so (Available, RENEWAL): the one run."""
    engine.renew(name)
    return send_available(engine, name)


def send_available(engine: LocalEngine, name: str) -> Execution:
    event = json.loads((EVENTS / "available.json").read_text(encoding="utf-8"))
    event = engine.certificate_event(event, name)
    event["detail"].update(CertificateType="AMAZON_ISSUED", Action="RENEWAL")
    (execution,) = engine.send(event, wait_seconds=60).executions
    return execution


def exited(execution: Execution, state: str) -> dict[str, Any]:
    """The output `state` exited with (its first time)."""
    for event in execution.history:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == state:
            output: dict[str, Any] = json.loads(details["output"])
            return output
    raise AssertionError(f"{state} never finished: {execution.states}")


def bundle_of(execution: Execution) -> dict[str, Any]:
    bundle: dict[str, Any] = exited(execution, "Export Certificate")["bundle"]
    return bundle


def partner_keys() -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=PARTNER)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def copied(serial: str) -> list[str]:
    """The partner's copy of one serial: no key."""
    return [f"site/{serial}/{name}.pem" for name in ("cert", "chain", "fullchain")]


def test_a_renewed_exportable_public_certificate_is_exported_once_and_distributed(
    engine: LocalEngine, acm_exports: list[str]
):
    # WHEN ACM renews the exportable public certificate shop
    execution = renewed(engine, "shop")
    # THEN it took the private certificates' way: exported once, copied to the partner bucket
    assert execution.status == "SUCCEEDED", execution.states
    assert execution.states[-1] == "Renewal Distributed"
    assert "Export Certificate" in execution.states
    assert acm_exports == [engine.certificates["shop"].arn]
    assert bundle_of(execution)["created"] is True
    assert {d["status"] for d in distributions(execution)} == {"DISTRIBUTED"}
    assert partner_keys() == copied(bundle_of(execution)["serial"])
    triage = exited(execution, "Triage Event")
    assert triage["reasons"][:2] == ["DistributionPending", "ExportablePublicRenewed"]


def test_a_second_run_for_the_same_serial_reuses_the_bundle_and_still_distributes(
    engine: LocalEngine, acm_exports: list[str]
):
    # GIVEN the partner bucket is gone when ACM renews shop: the distribution is incomplete
    s3 = boto3.client("s3")
    s3.delete_bucket(Bucket=PARTNER)
    first = renewed(engine, "shop")
    assert first.status == "FAILED"
    assert first.states[-1] == "Distribution Incomplete"
    assert bundle_of(first)["created"] is True
    # WHEN the bucket is back and the same event comes again (the record was released)
    s3.create_bucket(Bucket=PARTNER)
    second = send_available(engine, "shop")
    # THEN the second run exports nothing, takes the first run's bundle, and distributes it
    assert second.status == "SUCCEEDED", second.states
    assert second.states[-1] == "Renewal Distributed"
    assert bundle_of(second) == {**bundle_of(first), "created": False}
    assert acm_exports == [engine.certificates["shop"].arn], "ACM exported the serial once"
    assert partner_keys() == copied(bundle_of(second)["serial"])


def test_a_profile_at_its_daily_cap_exports_nothing_and_tells_owners_and_operations(
    engine: LocalEngine, acm_exports: list[str]
):
    # GIVEN profile public (exports_per_day: 2) already exported shop and blog today
    assert [renewed(engine, name).states[-1] for name in ("shop", "blog")] == [
        "Renewal Distributed",
        "Renewal Distributed",
    ]
    # WHEN ACM renews a third certificate of the profile the same UTC day
    execution = renewed(engine, "docs")
    # THEN the run ends on ExportCapReached with nothing exported for docs
    assert execution.status == "FAILED"
    assert execution.error == "ExportCapReached"
    assert execution.states[-6:] == EXPORT_FAILURE
    docs = engine.certificates["docs"].arn
    assert docs not in acm_exports
    bucket = engine.stack.resources["CertificateBucket"].ref  # type: ignore[union-attr]
    prefix = f"certificates/{docs.rsplit('/', 1)[1]}/"
    assert boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] == 0
    # AND operations heard of it on the ops topic, the owners by mail, Security Hub has it
    mail = engine.notifications()
    (ops,) = [m for m in mail if m["attributes"].get("reason") == "ExportCapReached"]
    assert "daily export cap" in ops["subject"]
    assert docs in ops["body"]
    assert "Profile: public" in ops["body"]
    told = [m for m in mail if m["attributes"].get("event_kind") == "ExportFailed"]
    assert [m["recipient"] for m in told] == [OWNER]
    assert "ExportCapReached" in told[0]["body"]
    assert ("ExportRefused", "HIGH") in [(f["problem"], f["severity"]) for f in engine.findings()]


def test_a_public_certificate_acm_will_not_export_keeps_its_old_route(
    engine: LocalEngine, acm_exports: list[str]
):
    # WHEN ACM renews plain, a public certificate requested without Options.Export, whose
    # event says Exported (the event is never trusted for it)
    engine.renew("plain")
    event = json.loads((EVENTS / "available.json").read_text(encoding="utf-8"))
    event = engine.certificate_event(event, "plain")
    event["detail"].update(CertificateType="AMAZON_ISSUED", Action="RENEWAL", Exported=True)
    (execution,) = engine.send(event).executions
    # THEN the owners are told it was renewed; nothing is exported or distributed
    assert execution.status == "SUCCEEDED"
    assert execution.states[-1] == "Owners Notified"
    assert "Export Certificate" not in execution.states
    assert acm_exports == []
    assert partner_keys() == []
