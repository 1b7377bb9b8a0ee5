"""A hub takes events from its organisation's admitted accounts and Regions, about their own
certificates; everything else is ForeignEvent. A single stack is unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from certrelay.errors import ForeignEvent
from certrelay.events import check_origin, parse_event
from certrelay.organization import Organization

# AWS's documented ACM samples (and ours for Revoked and Rotated), all from 123456789012.
SAMPLES = Path(__file__).resolve().parents[2] / "events"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.json"))
SAMPLE_ACCOUNT, SAMPLE_REGION = "123456789012", "us-east-1"
HUB, MEMBER, OUTSIDER = "111111111111", "222222222222", "999999999999"
ORGANIZATION = Organization(
    mode="hub",
    hub_account=HUB,
    hub_region="us-east-1",
    partition="aws",
    member_accounts=frozenset({MEMBER, "333333333333"}),
    regions=frozenset({"us-east-1", "eu-west-1"}),
    external_id="hub-external-id-0123456789",
)


def sample(name: str, *, account: str, region: str, arn_account: str = "", arn_region: str = ""):
    """AWS's sample event, as ACM would send it from `account` and `region` (its certificate's
    ARN in `arn_account`/`arn_region`, which default to the event's own)."""
    raw: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    arn = raw["resources"][0].replace(
        f":{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:", f":{arn_region or region}:{arn_account or account}:"
    )
    return parse_event({**raw, "account": account, "region": region, "resources": [arn]})


@pytest.mark.parametrize("name", SAMPLE_NAMES)
@pytest.mark.parametrize(
    ("account", "region"),
    [(HUB, "us-east-1"), (HUB, "eu-west-1"), (MEMBER, "us-east-1"), ("333333333333", "eu-west-1")],
)
def test_a_hub_takes_every_sample_from_an_admitted_account_and_region(
    name: str, account: str, region: str
) -> None:
    # GIVEN AWS's sample, sent by ACM in the hub's or a member's account and an admitted Region
    event = sample(name, account=account, region=region)
    # WHEN the hub checks its origin THEN it is taken (no error)
    check_origin(event, organization=ORGANIZATION)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_a_hub_refuses_an_event_from_an_account_outside_the_organisation(name: str) -> None:
    # GIVEN a sample from account 999999999999, about its own certificate
    event = sample(name, account=OUTSIDER, region="us-east-1")
    # WHEN the hub checks its origin THEN it is foreign, and the message names the account
    with pytest.raises(ForeignEvent, match=f"account {OUTSIDER}, not the hub's or a member's"):
        check_origin(event, organization=ORGANIZATION)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_a_hub_refuses_a_member_event_from_a_region_it_does_not_serve(name: str) -> None:
    event = sample(name, account=MEMBER, region="ap-south-1")
    with pytest.raises(ForeignEvent, match="region ap-south-1, not one this hub serves"):
        check_origin(event, organization=ORGANIZATION)


MISMATCHED = [
    ("a member's event about the hub's certificate", {"arn_account": HUB}),
    ("a member's event about another member's", {"arn_account": "333333333333"}),
    ("a member's event about an outsider's", {"arn_account": OUTSIDER}),
    ("a member's event about its certificate in another Region", {"arn_region": "eu-west-1"}),
]


@pytest.mark.parametrize("name", SAMPLE_NAMES)
@pytest.mark.parametrize(("case", "arn"), MISMATCHED, ids=[m[0] for m in MISMATCHED])
def test_a_hub_refuses_an_event_whose_certificate_arn_is_not_in_its_own_account_and_region(
    name: str, case: str, arn: dict[str, str]
) -> None:
    # GIVEN an event from member 222222222222 in us-east-1 whose resource is elsewhere
    event = sample(name, account=MEMBER, region="us-east-1", **arn)
    # WHEN the hub checks it THEN it is foreign: both sides are admitted, but they disagree
    with pytest.raises(ForeignEvent, match="not in the event's own partition, region and account"):
        check_origin(event, organization=ORGANIZATION)


def test_a_hub_refuses_a_certificate_in_another_partition() -> None:
    raw = json.loads((SAMPLES / "expired.json").read_text(encoding="utf-8"))
    arn = (
        raw["resources"][0]
        .replace(f":{SAMPLE_ACCOUNT}:", f":{MEMBER}:")
        .replace("aws:", "aws-cn:", 1)
    )
    event = parse_event({**raw, "account": MEMBER, "resources": [arn]})
    with pytest.raises(ForeignEvent, match="aws, us-east-1, 222222222222"):
        check_origin(event, organization=ORGANIZATION)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_single_mode_is_unchanged_it_takes_its_own_and_refuses_a_member(name: str) -> None:
    # GIVEN a single stack, described either way
    single = Organization.single(HUB, "us-east-1", "aws")
    own = sample(name, account=HUB, region="us-east-1")
    member = sample(name, account=MEMBER, region="us-east-1")
    other_region = sample(name, account=HUB, region="eu-west-1")
    # THEN its own events pass, and the others give today's messages, both ways of calling
    for check in (
        {"organization": single},
        {"account": HUB, "region": "us-east-1", "partition": "aws"},
    ):
        check_origin(own, **check)
        with pytest.raises(ForeignEvent, match=f"account {MEMBER}, not this stack's account"):
            check_origin(member, **check)
        with pytest.raises(ForeignEvent, match="region eu-west-1, not this stack's region"):
            check_origin(other_region, **check)
