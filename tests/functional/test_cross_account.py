"""A hub acts on a member's certificate in the member's own account and Region, through the
member.yaml role of each step's kind; its own certificates keep its own clients; a role it
cannot assume is a typed error. moto with two accounts (tests/functional/org_accounts.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from botocore.stub import Stubber

from certrelay.accounts import Sessions
from certrelay.approvers import approvers_reader
from certrelay.config import Settings
from certrelay.errors import ForeignEvent, MemberRoleUnavailable
from certrelay.export import ExportSettings
from certrelay.export_guard import ExportGuard
from certrelay.findings import CertificateExpired, finding_id
from certrelay.install_callbacks import CallbackSettings, member_ssm
from certrelay.profiles import load_profiles
from certrelay.tasks import distribute, findings
from certrelay.tasks.export import Exporter
from certrelay.tasks.triage import Triager
from tests.functional.org_accounts import (
    EXTERNAL_ID,
    HUB,
    HUB_ENV,
    MEMBER,
    ORGANIZATION,
    OUTSIDER,
    REGION,
    RecordingClients,
)
from tests.functional.test_findings import decision as finding_decision
from tests.functional.test_findings import planned
from tests.functional.test_triage import acm_event, import_certificate

NOW = datetime.now(UTC).replace(microsecond=0)
EXECUTION = f"arn:aws:states:{REGION}:{HUB}:execution:CertrelayStateMachine:run-1"
BUCKET, TABLE, TOKENS = "certrelay-bundles", "certrelay-events", "certrelay-install-tokens"
PROFILES = load_profiles(
    """
profiles:
  web:
    approval: auto
    approvers: [approver@example.com]
    targets:
      - kind: server
        name: edge
        instances: [i-0123456789abcdef0]
        cert_path: /etc/ssl/web.pem
        key_path: /etc/ssl/web.key
        chain_path: /etc/ssl/chain.pem
        reload: nginx
"""
)
READ = f"arn:aws:iam::{MEMBER}:role/certrelay-read-{REGION}"
EXPORT = f"arn:aws:iam::{MEMBER}:role/certrelay-export-{REGION}"
INSTALL = f"arn:aws:iam::{MEMBER}:role/certrelay-install-{REGION}"


def member(service: str) -> Any:
    """A client acting in the member account (as its own people would: boto3's, with the whole
    service model; the functions' clients know only the operations certrelay calls)."""
    sessions = Sessions(ORGANIZATION, make_client=boto3.client)
    return sessions.client(service, account=MEMBER, region=REGION, role="read")


def private_certificate(acm: Any, pca: Any) -> str:
    """A PRIVATE certificate tagged for profile web, from a private CA of the same account."""
    ca = pca.create_certificate_authority(
        CertificateAuthorityConfiguration={
            "KeyAlgorithm": "RSA_2048",
            "SigningAlgorithm": "SHA256WITHRSA",
            "Subject": {"CommonName": "member CA"},
        },
        CertificateAuthorityType="ROOT",
    )["CertificateAuthorityArn"]
    arn = str(
        acm.request_certificate(DomainName="api.member.example.com", CertificateAuthorityArn=ca)[
            "CertificateArn"
        ]
    )
    acm.add_tags_to_certificate(
        CertificateArn=arn, Tags=[{"Key": "certrelay:profile", "Value": "web"}]
    )
    return arn


def refusing_sts(clients: RecordingClients) -> Any:
    """make_client whose STS refuses every AssumeRole (no member.yaml, or a wrong external id)."""

    def make(service: str, **kwargs: Any) -> Any:
        if service != "sts":
            return clients(service, **kwargs)
        sts = boto3.client("sts", **kwargs)
        stubber = Stubber(sts)
        for _ in range(3):
            stubber.add_client_error("assume_role", "AccessDenied", "not authorized", 403)
        stubber.activate()
        return sts

    return make


@pytest.fixture
def hub_settings() -> Settings:
    return Settings.from_env({**HUB_ENV, "FALLBACK_OWNER_EMAIL": "ops@example.com"})


# --- Triage Event: the read role --------------------------------------------------------------


def test_triage_describes_a_member_certificate_through_the_member_read_role(
    accounts: None, hub_settings: Settings
) -> None:
    # GIVEN a certificate in member 222222222222, us-east-1, and an Expired event ACM sent there
    arn = import_certificate(member("acm"), days_left=5, tags={"certrelay:owner": "a@example.com"})
    clients = RecordingClients()
    hub_acm = boto3.client("acm", region_name=REGION)
    triager = Triager(
        hub_settings, {}, hub_acm, sessions=Sessions(ORGANIZATION, make_client=clients)
    )
    event = {**acm_event("Expired", arn), "account": MEMBER}
    # WHEN the hub triages it
    decision = triager.triage({"event": event, "execution": EXECUTION}, now=NOW)
    # THEN ACM was read in the member account through its read role, with the external id
    assert clients.roles() == [READ]
    assert clients.assumed[0]["ExternalId"] == EXTERNAL_ID
    assert decision["certificate"]["arn"] == arn
    assert decision["certificate"]["domain"] == "legacy.example.com"
    assert decision["owners"] == ["a@example.com"]
    # AND the hub's own ACM does not hold that certificate
    assert hub_acm.list_certificates()["CertificateSummaryList"] == []


def test_triage_of_the_hubs_own_certificate_assumes_nothing(
    accounts: None, hub_settings: Settings
) -> None:
    hub_acm = boto3.client("acm", region_name=REGION)
    arn = import_certificate(hub_acm, days_left=5, tags={})
    clients = RecordingClients()
    triager = Triager(
        hub_settings, {}, hub_acm, sessions=Sessions(ORGANIZATION, make_client=clients)
    )
    event = {**acm_event("Expired", arn), "account": HUB}
    decision = triager.triage({"event": event, "execution": EXECUTION}, now=NOW)
    assert decision["certificate"]["arn"] == arn
    assert clients.made == []


def test_triage_with_an_unassumable_member_role_is_member_role_unavailable(
    accounts: None, hub_settings: Settings
) -> None:
    # GIVEN a member whose read role refuses the hub
    arn = import_certificate(member("acm"), days_left=5, tags={})
    sessions = Sessions(ORGANIZATION, make_client=refusing_sts(RecordingClients()))
    triager = Triager(hub_settings, {}, boto3.client("acm", region_name=REGION), sessions=sessions)
    event = {**acm_event("Expired", arn), "account": MEMBER}
    # WHEN the hub triages its event THEN the typed error names the role to check
    with pytest.raises(MemberRoleUnavailable, match=f"cannot assume {READ} \\(AccessDenied\\)"):
        triager.triage({"event": event, "execution": EXECUTION}, now=NOW)


def test_triage_refuses_a_non_member_event_before_assuming_anything(
    accounts: None, hub_settings: Settings
) -> None:
    arn = f"arn:aws:acm:{REGION}:{OUTSIDER}:certificate/0000aaaa-1111-2222-3333-444455556666"
    clients = RecordingClients()
    triager = Triager(
        hub_settings, {}, boto3.client("acm"), sessions=Sessions(ORGANIZATION, make_client=clients)
    )
    event = {**acm_event("Expired", arn), "account": OUTSIDER}
    with pytest.raises(ForeignEvent, match=OUTSIDER):
        triager.triage({"event": event, "execution": EXECUTION}, now=NOW)
    assert clients.made == []


# --- Export, distribute, install callback, findings, approval: one member renewal --------------


@dataclass
class Hub:
    """The hub's own bucket, key, tables; a member's PRIVATE certificate; recorded roles."""

    arn: str
    clients: RecordingClients
    sessions: Sessions
    exporter: Exporter


@pytest.fixture
def hub(accounts: None) -> Hub:
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for table in (TABLE, TOKENS):
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    arn = private_certificate(member("acm"), member("acm-pca"))
    clients = RecordingClients()
    sessions = Sessions(ORGANIZATION, make_client=clients)
    exporter = Exporter(
        ExportSettings(BUCKET, key, "certrelay/export/"),
        PROFILES,
        boto3.client("acm", region_name=REGION),
        s3,
        boto3.client("secretsmanager", region_name=REGION),
        ExportGuard(dynamodb, TABLE),
        sessions,
    )
    return Hub(arn, clients, sessions, exporter)


def exported(hub: Hub) -> dict[str, Any]:
    decision = {"certificate": {"arn": hub.arn}, "profile": "web"}
    return hub.exporter.export({"execution": EXECUTION, "decision": decision}, now=NOW)


def test_export_exports_a_member_certificate_through_its_export_role_into_the_hubs_bucket(
    hub: Hub,
) -> None:
    # WHEN the hub exports the member's PRIVATE certificate
    result = exported(hub)
    # THEN ACM was called in the member account through the export role only
    assert hub.clients.roles() == [EXPORT]
    assert result["created"] is True
    # AND the bundle is the hub's, under the member certificate's id and ACM's serial
    assert result["bucket"] == BUCKET
    assert result["prefix"].startswith(f"certificates/{hub.arn.rsplit('/', 1)[1]}/")


def test_export_with_an_unassumable_member_role_exports_nothing(hub: Hub) -> None:
    hub.exporter = Exporter(
        *[getattr(hub.exporter, f) for f in ("settings", "profiles", "acm", "s3")],
        hub.exporter.secretsmanager,
        hub.exporter.guard,
        Sessions(ORGANIZATION, make_client=refusing_sts(RecordingClients())),
    )
    with pytest.raises(MemberRoleUnavailable, match=EXPORT):
        exported(hub)
    listed = boto3.client("s3").list_object_versions(Bucket=BUCKET)
    assert listed.get("Versions", []) == []


class Handover:
    """The distribute function's Lambda client: keeps the callback hand-overs it is asked for."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.payloads.append(kwargs["Payload"])
        return {"StatusCode": 202}


@dataclass
class _Http:
    status_code: int = 200


def no_invocations_yet(make: Any) -> Any:
    """make_client whose SSM clients answer ListCommandInvocations (moto has none): nothing yet."""

    def made(service: str, **kwargs: Any) -> Any:
        client = make(service, **kwargs)
        if service == "ssm":
            client.meta.events.register(
                "before-call.ssm.ListCommandInvocations",
                lambda **_: (_Http(), {"CommandInvocations": []}),
            )
        return client

    return made


def test_distribute_sends_the_members_install_document_in_the_member_account(hub: Hub) -> None:
    # GIVEN the member certificate exported into the hub's bucket
    bundle = exported(hub)
    hub.sessions = Sessions(ORGANIZATION, make_client=no_invocations_yet(hub.clients))
    handover = Handover()

    def own(service: str) -> Any:
        return handover if service == "lambda" else boto3.client(service, region_name=REGION)

    settings = CallbackSettings(TOKENS, BUCKET, "certrelay-InstallDocument-1", "callback", None)
    run = distribute.Distributing(settings, PROFILES, hub.sessions, own, Logger(), NOW)
    item = {
        "certificate_arn": hub.arn,
        "serial": bundle["serial"],
        "profile": "web",
        "target": {"id": "web#edge", "kind": "server"},
    }
    # WHEN Send Install Command runs for the member's server
    event = {"state": "Send Install Command", "execution": EXECUTION, "token": "t0k", "item": item}
    sent = distribute.send_install_command(event, run)
    # THEN the certificate was re-read through the read role and SSM used the install role
    assert hub.clients.roles() == [EXPORT, READ, INSTALL]
    # AND the command runs the member's document in the member's account, none in the hub's
    (command,) = member("ssm").list_commands()["Commands"]
    assert command["CommandId"] == sent["command_id"]
    assert command["DocumentName"] == "certrelay-install-certificate"
    assert boto3.client("ssm", region_name=REGION).list_commands()["Commands"] == []
    # AND the install callback reads that command through the member's install role
    status_event = {"account": MEMBER, "region": REGION, "detail": {"command-id": "c"}}
    callback_ssm = member_ssm(status_event, hub.sessions)
    assert callback_ssm.list_commands()["Commands"][0]["CommandId"] == sent["command_id"]
    assert member_ssm({**status_event, "account": HUB}, hub.sessions) is None
    assert member_ssm(status_event, None) is None


def test_cancel_install_cancels_in_the_member_account(hub: Hub) -> None:
    run = distribute.Distributing(
        CallbackSettings(TOKENS, BUCKET, "doc", "callback", None),
        PROFILES,
        hub.sessions,
        lambda service: boto3.client(service, region_name=REGION),
        Logger(),
        NOW,
    )
    item = {"certificate_arn": hub.arn, "serial": "0a", "profile": "web",
            "target": {"id": "web#edge", "kind": "server"}}  # fmt: skip
    answer = distribute.cancel_install({"state": "Cancel Install", "execution": EXECUTION,
                                        "item": item}, run)  # fmt: skip
    # THEN nothing was stored for that run, so nothing to cancel; the member is where it looks
    assert answer["status"] == "TIMED_OUT"
    assert run.origin(hub.arn) == {"account": MEMBER, "region": REGION}
    assert run.install_settings(hub.arn).document == "certrelay-install-certificate"


def test_a_member_finding_is_imported_into_the_members_own_security_hub(hub: Hub) -> None:
    # GIVEN Security Hub on in the member account and in the hub's
    member("securityhub").enable_security_hub()
    boto3.client("securityhub", region_name=REGION).enable_security_hub()
    run = findings.Reporting(
        lambda service: boto3.client(service, region_name=REGION),
        HUB, REGION, "aws", Logger(), NOW, hub.sessions,
    )  # fmt: skip
    state = finding_decision(hub.arn, finding=planned(CertificateExpired, in_use=True))
    # WHEN Raise Finding runs for the member's certificate
    raised = findings.raise_finding(
        {"state": "Raise Finding", "execution": EXECUTION, "decision": state}, run
    )
    # THEN it went to the member's own account, with the member's product ARN and account id
    assert raised["ids"] == [finding_id(hub.arn, CertificateExpired)]
    (found,) = member("securityhub").get_findings()["Findings"]
    product = f"arn:aws:securityhub:{REGION}:{MEMBER}:product/{MEMBER}/default"
    assert (found["ProductArn"], found["AwsAccountId"]) == (product, MEMBER)
    assert boto3.client("securityhub", region_name=REGION).get_findings()["Findings"] == []
    assert hub.clients.roles() == [READ]
    # AND resolving it archives it there
    resolved = findings.resolve_findings(
        {"state": "Resolve Finding", "execution": EXECUTION, "decision": state}, run
    )
    assert resolved["ids"] == raised["ids"]
    (found,) = member("securityhub").get_findings()["Findings"]
    assert found["RecordState"] == "ARCHIVED"


def test_the_approval_pages_read_a_member_certificates_profile_through_the_read_role(
    hub: Hub,
) -> None:
    approvers = approvers_reader(boto3.client("acm", region_name=REGION), PROFILES, hub.sessions)
    assert approvers(hub.arn, "request") == frozenset({"approver@example.com"})
    assert hub.clients.roles() == [READ]
    # AND in single mode (no sessions) the hub's own ACM, which does not hold it, is asked
    single = approvers_reader(boto3.client("acm", region_name=REGION), PROFILES, None)
    assert single(hub.arn, "request") == frozenset()


def test_every_step_refuses_to_assume_a_role_outside_the_organisation(hub: Hub) -> None:
    arn = hub.arn.replace(MEMBER, OUTSIDER)
    with pytest.raises(ForeignEvent, match=OUTSIDER):
        approvers_reader(boto3.client("acm"), PROFILES, hub.sessions)(arn, "request")
    assert hub.clients.roles() == []
