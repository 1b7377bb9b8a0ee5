"""Clients in a certificate's own account: the hub's credentials at home, a member's role abroad."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from certrelay.accounts import Sessions, clients_for, sessions_from_env
from certrelay.errors import (
    ConfigurationError,
    ForeignEvent,
    MemberRoleUnavailable,
    RegionNotEnabled,
)
from tests.functional.org_accounts import (
    EXTERNAL_ID,
    HUB,
    HUB_ENV,
    MEMBER,
    ORGANIZATION,
    OUTSIDER,
    RecordingClients,
)


def caller(client_for: Any) -> str:
    return str(client_for("sts").get_caller_identity()["Account"])


def test_the_hubs_own_account_uses_the_functions_own_credentials_in_its_region(
    accounts: None,
) -> None:
    # GIVEN a hub's sessions
    clients = RecordingClients()
    sessions = Sessions(ORGANIZATION, make_client=clients)
    # WHEN it asks for ACM in its own account, in a member Region
    acm = sessions.client("acm", account=HUB, region="eu-west-1", role="read")
    # THEN no role is assumed and the client acts as the hub, in that Region
    assert clients.assumed == []
    assert acm.meta.region_name == "eu-west-1"
    assert caller(lambda s: sessions.client(s, account=HUB, region="eu-west-1", role="read")) == HUB


def test_a_member_certificate_is_described_through_the_assumed_role(accounts: None) -> None:
    # GIVEN a certificate in member 222222222222, us-east-1 (put there through a member session)
    clients = RecordingClients()
    sessions = Sessions(ORGANIZATION, make_client=clients)
    member_acm = sessions.client("acm", account=MEMBER, region="us-east-1", role="read")
    arn = member_acm.request_certificate(DomainName="member.example.com")["CertificateArn"]
    assert f":{MEMBER}:" in arn
    # AND the hub's own ACM does not hold it
    assert boto3.client("acm").list_certificates()["CertificateSummaryList"] == []
    # WHEN the hub asks for the certificate's clients
    client_for = sessions.for_certificate(arn, "read")
    described = client_for("acm").describe_certificate(CertificateArn=arn)
    # THEN it is described in the member account, through <prefix>-read-<region> + external id
    assert described["Certificate"]["DomainName"] == "member.example.com"
    assert caller(client_for) == MEMBER
    assert clients.assumed[0] == {
        "RoleArn": f"arn:aws:iam::{MEMBER}:role/certrelay-read-us-east-1",
        "RoleSessionName": "certrelay-read",
        "ExternalId": EXTERNAL_ID,
    }


def test_assumed_credentials_are_cached_until_five_minutes_before_they_expire(
    accounts: None,
) -> None:
    # GIVEN sessions whose clock can be moved
    clock = [datetime.now(UTC)]
    clients = RecordingClients()
    sessions = Sessions(ORGANIZATION, make_client=clients, now=lambda: clock[0])
    # WHEN the same role is used twice, for two services
    acm = sessions.client("acm", account=MEMBER, region="us-east-1", role="export")
    again = sessions.client("acm", account=MEMBER, region="us-east-1", role="export")
    sessions.client("ssm", account=MEMBER, region="us-east-1", role="export")
    # THEN the role is assumed once and the client reused
    assert len(clients.assumed) == 1
    assert again is acm
    # WHEN another role or Region is asked for THEN each is assumed on its own
    sessions.client("acm", account=MEMBER, region="eu-west-1", role="export")
    sessions.client("acm", account=MEMBER, region="us-east-1", role="read")
    assert [a["RoleArn"].rsplit("/", 1)[1] for a in clients.assumed] == [
        "certrelay-export-us-east-1",
        "certrelay-export-eu-west-1",
        "certrelay-read-us-east-1",
    ]
    # WHEN the clock reaches five minutes before moto's one-hour expiry THEN it is assumed again
    clock[0] += timedelta(minutes=56)
    fresh = sessions.client("acm", account=MEMBER, region="us-east-1", role="export")
    assert len(clients.assumed) == 4
    assert fresh is not acm


def test_an_account_or_region_outside_the_organisation_assumes_nothing(accounts: None) -> None:
    clients = RecordingClients()
    sessions = Sessions(ORGANIZATION, make_client=clients)
    with pytest.raises(ForeignEvent, match=OUTSIDER):
        sessions.client("acm", account=OUTSIDER, region="us-east-1", role="read")
    with pytest.raises(ForeignEvent, match="ap-south-1"):
        sessions.for_certificate(
            f"arn:aws:acm:ap-south-1:{MEMBER}:certificate/0a1b2c3d-0000-4000-8000-00000000abcd",
            "read",
        )("acm")
    with pytest.raises(ForeignEvent, match="not an ACM certificate ARN"):
        sessions.for_certificate(f"arn:aws:iam::{MEMBER}:role/x", "read")
    assert clients.made == []


def stubbed_sts(error_code: str, message: str) -> Any:
    """An STS client whose AssumeRole answers with the given error."""
    sts = boto3.client("sts", region_name="eu-west-1")
    stubber = Stubber(sts)
    stubber.add_client_error(
        "assume_role", service_error_code=error_code, service_message=message, http_status_code=403
    )
    stubber.activate()
    return sts


@pytest.mark.parametrize(
    ("code", "typed", "says"),
    [
        ("AccessDenied", MemberRoleUnavailable, "cannot assume arn:aws:iam::222222222222:role/"),
        ("RegionDisabledException", RegionNotEnabled, "eu-west-1 refuses credentials"),
        ("InvalidClientTokenId", RegionNotEnabled, "not enabled"),
    ],
)
def test_a_refused_assume_role_is_a_typed_error_that_names_the_role_not_a_secret(
    code: str, typed: type[Exception], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN STS refusing the hub's AssumeRole in the member's Region
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sts = stubbed_sts(code, "refused")
    sessions = Sessions(ORGANIZATION, make_client=lambda service, **_: sts)
    # WHEN a member client is asked for THEN the typed error says what to check
    with pytest.raises(typed, match=says) as caught:
        sessions.client("acm", account=MEMBER, region="eu-west-1", role="read")
    assert EXTERNAL_ID not in str(caught.value)
    assert caught.value.__cause__ is None


def test_a_member_service_refusing_the_session_token_is_region_not_enabled(accounts: None) -> None:
    # GIVEN a member client whose service answers that it does not know the session's token
    sessions = Sessions(ORGANIZATION)
    acm = sessions.client("acm", account=MEMBER, region="eu-west-1", role="read")
    stubber = Stubber(acm)
    stubber.add_client_error(
        "list_certificates",
        service_error_code="UnrecognizedClientException",
        service_message="The security token included in the request is invalid.",
        http_status_code=400,
    )
    # WHEN it is called THEN the typed error names the Region
    with stubber, pytest.raises(RegionNotEnabled, match="eu-west-1 refuses the session"):
        acm.list_certificates()


def test_credentials_never_show_in_reprs_or_logs(
    accounts: None, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a member role assumed, with every log level captured
    caplog.set_level(logging.DEBUG)
    captured: list[dict[str, Any]] = []
    sts = boto3.client("sts")
    sts.meta.events.register(
        "after-call.sts.AssumeRole", lambda parsed, **_: captured.append(parsed["Credentials"])
    )
    clients_with_capture = lambda service, **kwargs: (  # noqa: E731
        sts if service == "sts" else boto3.client(service, **kwargs)
    )
    sessions = Sessions(ORGANIZATION, make_client=clients_with_capture)
    sessions.client("acm", account=MEMBER, region="us-east-1", role="read")
    secret = captured[0]["SecretAccessKey"]
    token = captured[0]["SessionToken"]
    # THEN neither the secret, the token nor the external id is in the repr or certrelay's logs
    for text in (repr(sessions), str(sessions), repr(ORGANIZATION)):
        assert secret not in text
        assert token not in text
        assert EXTERNAL_ID not in text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("certrelay")]
    assert not any(secret in line or token in line for line in ours)


def test_sessions_from_env_is_none_in_single_mode_and_reads_nothing_else() -> None:
    assert sessions_from_env({}) is None
    assert sessions_from_env({"ORGANIZATION_MODE": "single", "MEMBER_EXTERNAL_ID": "x"}) is None


def test_sessions_from_env_in_hub_mode_is_the_hubs_organisation() -> None:
    sessions = sessions_from_env(HUB_ENV)
    assert sessions is not None
    assert sessions.organization == ORGANIZATION
    with pytest.raises(ConfigurationError, match="STACK_ACCOUNT_ID"):
        sessions_from_env({k: v for k, v in HUB_ENV.items() if k != "STACK_ACCOUNT_ID"})


def test_clients_for_keeps_the_functions_own_clients_at_home_and_in_single_mode() -> None:
    # GIVEN the function's own clients and a hub's sessions that must not be asked for home
    def own(service: str) -> Any:
        return f"own {service}"

    def never(service: str, **_: Any) -> Any:
        raise AssertionError(f"no client should be made for {service}")

    sessions = Sessions(ORGANIZATION, make_client=never)
    home = f"arn:aws:acm:us-east-1:{HUB}:certificate/0a1b2c3d-0000-4000-8000-00000000abcd"
    away = home.replace(HUB, MEMBER)
    # THEN the hub's own certificate, single mode and a non-certificate ARN use `own`
    assert clients_for(home, "read", sessions=sessions, own=own) is own
    assert clients_for(away, "read", sessions=None, own=own) is own
    assert clients_for("not an arn", "export", sessions=sessions, own=own) is own
    # AND a member's certificate goes through the member's role (so the make_client is asked)
    with pytest.raises(AssertionError, match="no client should be made for sts"):
        clients_for(away, "read", sessions=sessions, own=own)("acm")
