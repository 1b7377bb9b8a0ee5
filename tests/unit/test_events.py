"""ACM EventBridge events parse into typed models, or fail with one actionable line."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from certrelay.errors import ForeignEvent, MalformedEvent, UnsupportedEvent
from certrelay.events import (
    EVENT_SIZE_LIMIT,
    AvailableDetail,
    EventKind,
    check_origin,
    entry_size,
    parse_event,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SHARED = ROOT.parent / "shared" / "acm-events"
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/61f50cd4-45b9-4259-b049-d0a53682fa4b"

SAMPLE_KINDS = {
    "approaching-expiration.json": EventKind.APPROACHING_EXPIRATION,
    "available.import-imported.json": EventKind.AVAILABLE,
    "available.issuance-private.json": EventKind.AVAILABLE,
    "available.json": EventKind.AVAILABLE,
    "expired.json": EventKind.EXPIRED,
    "renewal-action-required.json": EventKind.RENEWAL_ACTION_REQUIRED,
    "revoked.json": EventKind.REVOKED,
    "rotated.json": EventKind.ROTATED,
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda path: path.name)
def test_every_sample_event_parses_to_its_kind(path: Path) -> None:
    # GIVEN a sample event from events/
    raw = json.loads(path.read_text(encoding="utf-8"))
    # WHEN it is parsed
    event = parse_event(raw)
    # THEN it has the kind its name promises, the certificate ARN and an aware time
    assert event.kind is SAMPLE_KINDS[path.name]
    assert event.certificate_arn == ARN
    assert event.account == "123456789012"
    assert event.region == "us-east-1"
    assert event.time.tzinfo is not None


def test_events_directory_holds_exactly_the_registered_samples() -> None:
    # GIVEN the events/ directory (shared by README, CLI and tests)
    names = {path.name for path in EVENTS.glob("*.json")}
    # THEN every sample has a known kind and every kind has a sample
    assert names == set(SAMPLE_KINDS)
    assert set(SAMPLE_KINDS.values()) == set(EventKind)


def test_events_directory_matches_the_shared_samples_when_they_are_present() -> None:
    # GIVEN the shared AWS-documented samples (absent in CI clones) ...
    shared = sorted(SHARED.glob("*.json")) if SHARED.is_dir() else []
    # THEN each one is copied unchanged into events/ ...
    for path in shared:
        copy_path = EVENTS / path.name
        assert copy_path.is_file(), f"{path.name} is missing from events/"
        assert json.loads(copy_path.read_text()) == json.loads(path.read_text()), path.name
    # ... and without them the six documented kinds still have their copies here
    documented = {name for name in SAMPLE_KINDS if name not in ("revoked.json", "rotated.json")}
    assert documented <= {path.name for path in EVENTS.glob("*.json")}


def test_approaching_expiration_exposes_days_and_common_name() -> None:
    event = parse_event(load("approaching-expiration.json"))
    assert event.detail.days_to_expiry == 31
    assert event.detail.common_name == "My Awesome Service"
    assert event.time == datetime(2020, 9, 30, 6, 51, 8, tzinfo=UTC)


def test_available_detail_carries_action_and_dates() -> None:
    event = parse_event(load("available.json"))
    assert isinstance(event.detail, AvailableDetail)
    assert event.detail.action == "RENEWAL"
    assert event.detail.certificate_type == "PRIVATE"
    assert event.detail.exported is True
    assert event.detail.certificate_expiration_date == datetime(2020, 7, 7, 23, 59, 59, tzinfo=UTC)


def test_newer_documented_fields_are_read_and_unknown_fields_ignored() -> None:
    # GIVEN an Available event with the newest documented fields and one nobody knows yet
    raw = load("available.issuance-private.json")
    raw["detail"].update(
        {
            "FirstSubjectAlternativeName": "www.example.com",
            "ValidityInDays": 198,
            "CertificateKeyPairOrigin": "ACM_GENERATED",
            "AcmeEndpointArn": "arn:aws:acm:us-east-1:123456789012:acme-endpoint/abc",
            "AcmeAccountId": "acct-1",
            "SomethingAwsAddsNextYear": {"nested": True},
        }
    )
    del raw["detail"]["DomainValidationMethod"]
    raw["brand-new-envelope-field"] = 1
    # WHEN it is parsed
    detail = parse_event(raw).detail
    # THEN the new fields are available and the unknown one is dropped
    assert detail.first_subject_alternative_name == "www.example.com"
    assert detail.validity_in_days == 198
    assert detail.certificate_key_pair_origin == "ACM_GENERATED"
    assert detail.acme_account_id == "acct-1"
    assert detail.domain_validation_method is None
    assert "SomethingAwsAddsNextYear" not in detail.model_dump(by_alias=True)


def test_a_timestamp_without_offset_is_read_as_utc() -> None:
    raw = load("expired.json")
    raw["time"] = "2019-12-22T18:43:48"
    raw["detail"]["CertificateExpirationDate"] = "2019-12-22T18:43:48"
    event = parse_event(raw)
    assert event.time == datetime(2019, 12, 22, 18, 43, 48, tzinfo=UTC)
    assert event.detail.certificate_expiration_date == event.time


def test_other_partitions_certificate_arns_are_accepted() -> None:
    raw = load("expired.json")
    raw["resources"] = ["arn:aws-cn:acm:cn-north-1:123456789012:certificate/abc-123"]
    assert parse_event(raw).certificate_arn.startswith("arn:aws-cn:acm:")


def _without(key: str) -> Any:
    return lambda raw: {k: v for k, v in raw.items() if k != key}


def _with(key: str, value: Any) -> Any:
    return lambda raw: {**raw, key: value}


def _detail(**changes: Any) -> Any:
    return lambda raw: {**raw, "detail": {**raw["detail"], **changes}}


MALFORMED = [
    ("source is not ACM", _with("source", "aws.ec2"), "event source is 'aws.ec2', not 'aws.acm'"),
    ("no source", _without("source"), "event source is None, not 'aws.acm'"),
    ("no detail-type", _without("detail-type"), "event has no detail-type"),
    ("empty resources", _with("resources", []), "event has no resources: an ACM event names"),
    ("no resources", _without("resources"), "event has no resources"),
    ("resources not a list", _with("resources", "arn"), "resources must be a list (got 'arn')"),
    (
        "resource is not a certificate",
        _with("resources", ["arn:aws:s3:::bucket"]),
        "resources[0] 'arn:aws:s3:::bucket' is not an ACM certificate ARN",
    ),
    ("no detail", _without("detail"), "Approaching Expiration event: detail is missing"),
    ("detail not an object", _with("detail", "x"), "detail must be a JSON object (got 'x')"),
    ("no DaysToExpiry", _with("detail", {"CommonName": "x"}), "detail.DaysToExpiry is missing"),
    ("DaysToExpiry text", _detail(DaysToExpiry="soon"), "detail.DaysToExpiry must be a whole"),
    ("bad time", _with("time", "yesterday"), "time must be an ISO 8601 date-time"),
    ("no time", _without("time"), "time is missing"),
    # Strict JSON types: what a lax parser would coerce is refused.
    ("DaysToExpiry as text", _detail(DaysToExpiry="7"), "detail.DaysToExpiry must be a whole"),
    ("DaysToExpiry a float", _detail(DaysToExpiry=7.0), "detail.DaysToExpiry must be a whole"),
    ("DaysToExpiry a bool", _detail(DaysToExpiry=True), "detail.DaysToExpiry must be a whole"),
    ("CommonName a number", _detail(CommonName=7), "detail.CommonName must be a string"),
    ("InUse as text", _detail(InUse="true"), "detail.InUse must be true or false"),
    ("InUse as 1", _detail(InUse=1), "detail.InUse must be true or false"),
    ("time a number", _with("time", 1600000000), "time must be an ISO 8601 date-time"),
    ("time a date", _with("time", "2020-09-30"), "time must be an ISO 8601 date-time"),
    ("time digits", _with("time", "1600000000"), "time must be an ISO 8601 date-time"),
    ("time newline", _with("time", "2020-09-30T06:51:08Z\n"), "time must be an ISO 8601"),
    ("account a number", _with("account", 123456789012), "account must be a string"),
    ("id a number", _with("id", 1), "id must be a string"),
    ("account short", _with("account", "12345"), "account '12345' is not a 12-digit AWS"),
    ("account newline", _with("account", "123456789012\n"), "is not a 12-digit AWS account"),
    ("region odd", _with("region", "moon-1"), "region 'moon-1' is not an AWS region name"),
    ("region newline", _with("region", "us-east-1\n"), "is not an AWS region name"),
    ("resource tuple-ish", _with("resources", {"0": ARN}), "resources must be a list"),
    ("resource a number", _with("resources", [7]), "resources[0] must be a string"),
    ("ARN with newline", _with("resources", [ARN + "\n"]), "is not an ACM certificate ARN"),
    ("ARN with space", _with("resources", [ARN + " "]), "is not an ACM certificate ARN"),
    ("ARN of a load balancer", _with("resources", [ARN.replace(":acm:", ":elb:")]), "not an ACM"),
    ("ARN of an ACM-PCA CA", _with("resources", [ARN.replace(":acm:", ":acm-pca:")]), "not an"),
    ("ARN short account", _with("resources", [ARN.replace("123456789012", "1234")]), "not an ACM"),
    ("second resource", _with("resources", [ARN, "arn:aws:s3:::b"]), "resources[1] 'arn:aws:s3"),
]


@pytest.mark.parametrize(("case", "change", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_events_fail_with_one_actionable_line(
    case: str, change: Any, message: str
) -> None:
    # GIVEN a valid event broken in one way
    raw = change(copy.deepcopy(load("approaching-expiration.json")))
    # WHEN it is parsed THEN MalformedEvent says what is wrong, in one line, without a dump
    with pytest.raises(MalformedEvent) as caught:
        parse_event(raw)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert "pydantic" not in text
    assert "validation error" not in text.lower()


def test_an_available_event_needs_a_known_action() -> None:
    raw = load("available.json")
    raw["detail"]["Action"] = "TRANSFER"
    with pytest.raises(MalformedEvent, match=r"detail\.Action must be one of .*'REIMPORT'"):
        parse_event(raw)


def test_a_wrongly_typed_boolean_is_malformed() -> None:
    raw = load("expired.json")
    raw["detail"]["InUse"] = "sometimes"
    with pytest.raises(MalformedEvent, match=r"detail\.InUse must be true or false"):
        parse_event(raw)


@pytest.mark.parametrize("raw", [[], "event", None, 42], ids=repr)
def test_a_payload_that_is_not_an_object_is_malformed(raw: Any) -> None:
    with pytest.raises(MalformedEvent, match="not a JSON object"):
        parse_event(raw)


def test_an_unknown_acm_detail_type_is_unsupported_not_malformed() -> None:
    raw = load("expired.json")
    raw["detail-type"] = "ACM Certificate Teleported"
    with pytest.raises(UnsupportedEvent) as caught:
        parse_event(raw)
    assert "'ACM Certificate Teleported' is not an ACM event certrelay handles" in str(caught.value)
    assert not isinstance(caught.value, MalformedEvent)


STACK = {"account": "123456789012", "region": "us-east-1", "partition": "aws"}
OTHER_ACCOUNT_ARN = ARN.replace("123456789012", "999999999999")
FOREIGN = [
    ("event from another account", {"account": "999999999999"}, "account 999999999999"),
    ("event from another region", {"region": "eu-west-1"}, "region eu-west-1"),
    ("certificate of another account", {"resources": [OTHER_ACCOUNT_ARN]}, "999999999999"),
    ("certificate in another region", {"resources": [ARN.replace("us-east-1", "us-west-2")]}, ""),
    ("certificate in another partition", {"resources": [ARN.replace("aws:", "aws-cn:", 1)]}, ""),
    ("second certificate elsewhere", {"resources": [ARN, OTHER_ACCOUNT_ARN]}, "999999999999"),
]


@pytest.mark.parametrize(("case", "changes", "named"), FOREIGN, ids=[f[0] for f in FOREIGN])
def test_an_event_not_about_this_stacks_account_region_and_partition_is_foreign(
    case: str, changes: dict[str, Any], named: str
) -> None:
    # GIVEN a well-formed event from, or about a certificate in, somewhere else
    event = parse_event({**load("expired.json"), **changes})
    # WHEN its origin is checked against the stack's THEN ForeignEvent says what is foreign
    with pytest.raises(ForeignEvent) as caught:
        check_origin(event, **STACK)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda path: path.name)
def test_every_sample_is_from_and_about_the_samples_own_account_and_region(path: Path) -> None:
    # GIVEN AWS's documented samples (and ours for Revoked and Rotated), in a stack of their
    # account and region THEN strict parsing takes them and none of them is foreign
    check_origin(parse_event(json.loads(path.read_text(encoding="utf-8"))), **STACK)


def test_entry_size_counts_as_eventbridge_does() -> None:
    # GIVEN an event: Time counts 14 bytes, the rest their UTF-8 bytes, Detail as compact JSON
    raw = load("revoked.json")
    raw["detail"]["CommonName"] = "é.example.com"
    expected = (
        14
        + len(b"aws.acm")
        + len(b"ACM Certificate Revoked")
        + len(json.dumps(raw["detail"], separators=(",", ":"), ensure_ascii=False).encode())
        + len(ARN)
    )
    assert entry_size(raw) == expected
    assert entry_size({k: v for k, v in raw.items() if k != "time"}) == expected - 14


def test_the_size_limit_is_eventbridges_256_kb() -> None:
    raw = load("revoked.json")
    raw["detail"]["Padding"] = "x" * (EVENT_SIZE_LIMIT - entry_size(raw) - len(',"Padding":""'))
    assert entry_size(raw) == EVENT_SIZE_LIMIT == 262144


def test_a_revoked_public_event_with_exportable_parses_and_the_field_is_not_kept() -> None:
    # ACM's Revoked event carries Exportable (public certificates); triage reads ACM instead
    raw = json.loads((EVENTS / "revoked.json").read_text(encoding="utf-8"))
    raw["detail"]["Exportable"] = True
    parsed = parse_event(raw)
    assert parsed.detail.exported is True
    assert "Exportable" not in parsed.detail.model_dump(by_alias=True)
