"""triage() end to end against moto's ACM: parse, DescribeCertificate + tags, decide, compose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws

from certrelay.config import Settings
from certrelay.errors import ForeignEvent, MalformedEvent
from certrelay.owners import OWNER_TAG, PROFILE_TAG
from certrelay.profiles import load_profiles_file
from certrelay.triage import triage
from certrelay.workflow import check_result

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
NOW = datetime.now(UTC).replace(microsecond=0)
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:CertrelayStateMachine:run-1"
SETTINGS = Settings.from_env(
    {
        "FALLBACK_OWNER_EMAIL": "ops@example.com",
        "AWS_REGION": REGION,
        "STACK_ACCOUNT_ID": "123456789012",
        "STACK_PARTITION": "aws",
    }
)
PROFILES = load_profiles_file(ROOT / "config" / "profiles.yaml")
DECISION_KEYS = {
    "route", "reason", "reasons", "severity", "summary", "event_kind", "certificate",
    "owners", "profile", "dedupe_key", "record_expires_at", "mail", "recipients", "approval",
    "distribution", "finding", "notify",
}  # fmt: skip


@pytest.fixture
def acm() -> Iterator[ACMClient]:
    with mock_aws():
        yield boto3.client("acm", region_name=REGION)


def import_certificate(acm: ACMClient, *, days_left: int, tags: dict[str, str]) -> str:
    """Import a fresh self-signed certificate for legacy.example.com; return its ARN."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=300))
        .not_valid_after(NOW + timedelta(days=days_left))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("legacy.example.com")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    arn = acm.import_certificate(
        Certificate=cert.public_bytes(serialization.Encoding.PEM),
        PrivateKey=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )["CertificateArn"]
    if tags:
        acm.add_tags_to_certificate(
            CertificateArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    return arn


def acm_event(detail_type: str, arn: str, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "9c95e8e4-96a4-ef3f-b739-b6aa5b193afb",
        "detail-type": f"ACM Certificate {detail_type}",
        "source": "aws.acm",
        "account": "123456789012",
        "time": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [arn],
        "detail": {"CommonName": "legacy.example.com", **detail},
    }


def run(acm: ACMClient, raw: dict[str, Any]) -> dict[str, Any]:
    """Triage `raw`; the decision is checked against Triage Event's closed result model."""
    decision = triage(
        raw,
        acm_client=acm,
        settings=SETTINGS,
        profiles=PROFILES,
        execution_arn=EXECUTION,
        now=NOW,
    )
    check_result("Triage Event", decision)
    return decision


def test_an_imported_certificate_a_week_from_expiry_alerts_its_tagged_owner(acm: ACMClient) -> None:
    # GIVEN an imported certificate, 7 days left, owned by alice via the owner tag
    arn = import_certificate(acm, days_left=7, tags={OWNER_TAG: "alice@example.com"})
    # WHEN ACM's 7-day reminder is triaged
    result = run(acm, acm_event("Approaching Expiration", arn, DaysToExpiry=7))
    # THEN the owner is told, HIGH, with ACM's facts, in a JSON-able decision
    assert set(result) == DECISION_KEYS
    assert (result["route"], result["reason"], result["severity"]) == (
        "notify",
        "ImportedExpiring",
        "HIGH",
    )
    assert result["reasons"] == ["ImportedExpiring"]
    assert result["event_kind"] == "ApproachingExpiration"
    assert result["owners"] == ["alice@example.com"]
    assert result["profile"] is None
    cert = result["certificate"]
    assert cert["arn"] == arn
    assert cert["domain"] == "legacy.example.com"
    assert cert["type"] == "IMPORTED"
    assert cert["days_to_expiry"] == 7
    assert cert["not_after"] == (NOW + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cert["in_use"] is False
    assert result["recipients"] == ["alice@example.com"]
    assert result["mail"]["subject"] == (
        "[certrelay] HIGH: legacy.example.com expires in 7 days (imported)"
    )
    assert (result["mail"]["severity"], result["mail"]["certificate"]) == ("HIGH", arn)
    json.dumps(result)  # the state machine receives it as JSON


def test_the_decision_never_contains_key_material(acm: ACMClient) -> None:
    arn = import_certificate(acm, days_left=3, tags={OWNER_TAG: "alice@example.com"})
    text = json.dumps(run(acm, acm_event("Approaching Expiration", arn, DaysToExpiry=3)))
    assert "PRIVATE KEY" not in text
    assert "BEGIN CERTIFICATE" not in text


def test_a_profile_tag_brings_the_profiles_owners(acm: ACMClient) -> None:
    arn = import_certificate(
        acm, days_left=15, tags={OWNER_TAG: "alice@example.com", PROFILE_TAG: "web"}
    )
    result = run(acm, acm_event("Approaching Expiration", arn, DaysToExpiry=15))
    assert result["owners"] == ["alice@example.com", "web-team@example.com"]
    assert result["profile"] == "web"
    assert result["severity"] == "MEDIUM"
    assert result["recipients"] == ["alice@example.com", "web-team@example.com"]


def test_an_event_that_lies_about_the_name_and_days_is_told_with_acms_facts(
    acm: ACMClient,
) -> None:
    # GIVEN ACM knows legacy.example.com, 7 days left, owned by alice and the web profile
    arn = import_certificate(
        acm, days_left=7, tags={OWNER_TAG: "alice@example.com", PROFILE_TAG: "web"}
    )
    # WHEN an event about that ARN claims another name and 45 days (a reminder day) is triaged
    lie = acm_event("Approaching Expiration", arn, CommonName="evil.example.net", DaysToExpiry=45)
    result = run(acm, lie)
    # THEN the decision and every composed message carry ACM's name and days, never the event's
    assert result["certificate"]["domain"] == "legacy.example.com"
    assert result["certificate"]["days_to_expiry"] == 7
    assert result["severity"] == "HIGH"
    assert len(result["recipients"]) == 2
    for text in [result["summary"], result["mail"]["subject"], result["mail"]["message"]]:
        assert "legacy.example.com" in text
        assert "evil.example.net" not in text
        assert "45 days" not in text
    assert "evil.example.net" not in json.dumps(result)


def test_a_deleted_certificate_is_reported_to_the_fallback_owner(acm: ACMClient) -> None:
    # GIVEN an event about a certificate ACM no longer has
    arn = import_certificate(acm, days_left=7, tags={OWNER_TAG: "alice@example.com"})
    acm.delete_certificate(CertificateArn=arn)
    # WHEN it is triaged
    result = run(acm, acm_event("Expired", arn, InUse=True))
    # THEN the fallback owner hears CertificateNotFound, with the event's facts only
    assert (result["route"], result["reason"], result["severity"]) == (
        "notify",
        "CertificateNotFound",
        "MEDIUM",
    )
    assert result["owners"] == ["ops@example.com"]
    assert result["certificate"] == {
        "arn": arn,
        "domain": "legacy.example.com",
        "type": None,
        "status": None,
        "serial": None,
        "not_after": None,
        "days_to_expiry": None,
        "in_use": None,
    }
    assert result["dedupe_key"] == f"{arn}#Expired#unknown"


def test_an_untagged_certificate_goes_to_the_fallback_owner_as_owner_missing(
    acm: ACMClient,
) -> None:
    arn = import_certificate(acm, days_left=30, tags={})
    result = run(acm, acm_event("Approaching Expiration", arn, DaysToExpiry=30))
    assert result["reasons"] == ["ImportedExpiring", "OwnerMissing"]
    assert result["owners"] == ["ops@example.com"]
    assert result["severity"] == "LOW"
    assert "fallback owner" in result["mail"]["message"]


def test_an_unknown_profile_tag_is_reported_to_the_tagged_owner(acm: ACMClient) -> None:
    arn = import_certificate(acm, days_left=7, tags={OWNER_TAG: "bob@", PROFILE_TAG: "wbe"})
    result = run(acm, acm_event("Approaching Expiration", arn, DaysToExpiry=7))
    assert result["reasons"] == ["ImportedExpiring", "OwnerMissing", "ProfileUnknown"]
    assert result["profile"] is None
    body = result["mail"]["message"]
    assert "tag certrelay:owner has an invalid address 'bob@'" in body
    assert "tag certrelay:profile names unknown profile 'wbe'" in body


def test_dedupe_keys_include_the_day_only_for_daily_kinds(acm: ACMClient) -> None:
    # GIVEN one certificate and its serial as ACM reports it
    arn = import_certificate(acm, days_left=7, tags={OWNER_TAG: "alice@example.com"})
    serial = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]
    # WHEN events of several kinds are triaged
    details: list[tuple[str, dict[str, Any]]] = [
        ("Approaching Expiration", {"DaysToExpiry": 7}),
        ("Renewal Action Required", {"DaysToExpiry": 7}),
        ("Revoked", {}),
        ("Available", {"Action": "REIMPORT"}),
    ]
    keys = {
        kind: run(acm, acm_event(kind, arn, **detail))["dedupe_key"] for kind, detail in details
    }
    # THEN reminders are distinct per day, the rest per serial; an event ACM contradicts (an
    # imported certificate needs no renewal action; ACM says it is not revoked) is kept apart,
    # so that it never marks the real event of its kind as already handled
    assert keys == {
        "Approaching Expiration": f"{arn}#ApproachingExpiration#{serial}#7",
        "Renewal Action Required": f"{arn}#RenewalActionRequired#{serial}#7#inconsistent",
        "Revoked": f"{arn}#Revoked#{serial}#inconsistent",
        "Available": f"{arn}#Available#{serial}",
    }


def test_the_event_record_expires_after_the_configured_ttl(acm: ACMClient) -> None:
    arn = import_certificate(acm, days_left=7, tags={})
    result = run(acm, acm_event("Rotated", arn))
    assert result["record_expires_at"] == str(int(NOW.timestamp()) + 400 * 86400)


def test_an_ignored_reminder_composes_no_messages(acm: ACMClient) -> None:
    arn = import_certificate(acm, days_left=8, tags={OWNER_TAG: "alice@example.com"})
    result = run(acm, acm_event("Approaching Expiration", arn, DaysToExpiry=8))
    assert (result["route"], result["reason"]) == ("ignore", "NotAThresholdDay")
    assert (result["mail"], result["recipients"]) == (None, [])


def test_a_malformed_event_fails_before_any_acm_call(acm: ACMClient) -> None:
    with pytest.raises(MalformedEvent, match="event has no resources"):
        run(acm, acm_event("Expired", "x") | {"resources": []})


def revoke_in_moto(arn: str) -> None:
    """What ACM shows once a certificate is revoked (moto's ACM has no revocation call)."""
    from moto.acm.models import acm_backends

    acm_backends["123456789012"][REGION]._certificates[arn].status = "REVOKED"


def test_a_revoked_event_for_an_issued_certificate_is_inconsistent_and_tells_no_owner(
    acm: ACMClient,
) -> None:
    # GIVEN a certificate ACM says is ISSUED, in use by nobody, owned by alice
    arn = import_certificate(acm, days_left=60, tags={OWNER_TAG: "alice@example.com"})
    # WHEN a Revoked event about it is triaged
    result = run(acm, acm_event("Revoked", arn))
    # THEN operations get the contradiction; the owner, Security Hub and the approvers get nothing
    assert (result["route"], result["reason"], result["severity"]) == (
        "inconsistent",
        "EventInconsistent",
        "MEDIUM",
    )
    assert result["reasons"] == ["EventInconsistent"]
    assert "ACM says status ISSUED with no revocation date" in result["summary"]
    assert (result["mail"], result["recipients"]) == (None, [])
    assert result["finding"] is None
    assert result["approval"] is None
    assert result["distribution"] is None


def test_a_revoked_event_for_a_revoked_certificate_is_critical(acm: ACMClient) -> None:
    arn = import_certificate(acm, days_left=60, tags={OWNER_TAG: "alice@example.com"})
    revoke_in_moto(arn)
    result = run(acm, acm_event("Revoked", arn))
    assert (result["route"], result["severity"]) == ("attention", "CRITICAL")
    assert result["finding"] == {
        "action": "raise",
        "problem": "CertificateRevoked",
        "severity": "CRITICAL",
        "required": True,
    }
    assert result["dedupe_key"].endswith("#Revoked#" + result["certificate"]["serial"])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"account": "999999999999"}, "account 999999999999"),
        ({"region": "eu-west-1"}, "region eu-west-1"),
    ],
)
def test_a_foreign_event_is_refused_before_any_acm_call(
    acm: ACMClient, change: dict[str, str], named: str
) -> None:
    arn = import_certificate(acm, days_left=7, tags={})
    calls: list[str] = []
    acm.meta.events.register("before-call.acm.*", lambda model, **_: calls.append(model.name))
    with pytest.raises(ForeignEvent, match=named):
        run(acm, acm_event("Expired", arn) | change)
    assert calls == []


def test_an_event_about_another_accounts_certificate_is_foreign(acm: ACMClient) -> None:
    arn = "arn:aws:acm:us-east-1:999999999999:certificate/0000aaaa-1111-2222-3333-444455556666"
    with pytest.raises(ForeignEvent, match="999999999999"):
        run(acm, acm_event("Revoked", arn))


def test_a_tagged_owner_outside_the_allowed_domains_is_not_told(acm: ACMClient) -> None:
    """GIVEN OwnerEmailDomains=example.com and a tag naming an outside address WHEN triaged
    THEN that address gets no mail (the fallback owner does) and the mail says why."""
    settings = Settings.from_env(
        {
            "FALLBACK_OWNER_EMAIL": "ops@example.com",
            "OWNER_EMAIL_DOMAINS": "example.com",
            "AWS_REGION": REGION,
            "STACK_ACCOUNT_ID": "123456789012",
            "STACK_PARTITION": "aws",
        }
    )
    arn = import_certificate(acm, days_left=7, tags={OWNER_TAG: "thief@evil.example.net"})
    result = triage(
        acm_event("Approaching Expiration", arn, DaysToExpiry=7),
        acm_client=acm,
        settings=settings,
        profiles=PROFILES,
        execution_arn=EXECUTION,
        now=NOW,
    )
    assert result["recipients"] == ["ops@example.com"]
    assert "evil.example.net" not in json.dumps(result["recipients"])
    assert "outside the allowed email domains" in result["mail"]["message"]
