"""The ASFF findings certrelay builds: ids, severities, descriptions and required fields."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from certrelay import policy
from certrelay.errors import ServiceThrottled
from certrelay.findings import (
    ALL_PROBLEMS,
    MAX_DESCRIPTION,
    MAX_TITLE,
    CertificateExpired,
    CertificateRevoked,
    DistributionIncomplete,
    ExportRefused,
    FindingRejected,
    OwnerMissing,
    RenewalActionRequired,
    build_finding,
    describe,
    finding_id,
    planned_severity,
    raise_finding,
    resolve_findings,
)
from tests.unit.factories import ARN, NOW

ACCOUNT, REGION = "123456789012", "us-east-1"
ASFF_REQUIRED = {
    "SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId", "Types", "CreatedAt",
    "UpdatedAt", "Title", "Description", "Resources", "FindingProviderFields", "Severity",
}  # fmt: skip
CERTIFICATE = {
    "arn": ARN,
    "domain": "legacy.example.com",
    "type": "IMPORTED",
    "status": "EXPIRED",
    "serial": "0a:1b",
    "not_after": "2024-12-31T00:00:00Z",
    "in_use": True,
}


def finding(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "account": ACCOUNT,
        "region": REGION,
        "partition": "aws",
        "certificate": CERTIFICATE,
        "problem": CertificateExpired,
        "severity_label": "CRITICAL",
        "title": "ACM certificate expired: legacy.example.com",
        "description": "It expired.",
        "now": NOW,
    }
    return build_finding(**{**arguments, **overrides})


def test_finding_id_is_the_certificate_arn_and_problem_so_reraising_updates() -> None:
    # GIVEN one certificate WHEN its id is asked for twice and for another problem
    first, again = finding_id(ARN, OwnerMissing), finding_id(ARN, OwnerMissing)
    # THEN the same problem gives the same id, another problem another id
    assert first == again == f"{ARN}/certrelay/OwnerMissing"
    assert finding_id(ARN, CertificateRevoked) != first


@pytest.mark.parametrize("arn", ["", "not-an-arn", "arn:" + "x" * 600])
def test_finding_id_refuses_what_is_not_an_arn_or_too_long(arn: str) -> None:
    with pytest.raises(ValueError, match="no finding id"):
        finding_id(arn, OwnerMissing)


def test_a_problem_the_plan_raises_carries_the_plans_severity() -> None:
    # GIVEN a plan that raises CertificateExpired as CRITICAL (the policy: expired and in use)
    plan = {"finding": {"action": "raise", "problem": CertificateExpired, "severity": "CRITICAL"}}
    # WHEN its severity is asked for THEN it is the plan's, not decided again here
    assert planned_severity(CertificateExpired, plan) == "CRITICAL"


@pytest.mark.parametrize("problem", [DistributionIncomplete, ExportRefused])
def test_a_problem_raised_later_in_the_run_has_the_policys_severity(problem: str) -> None:
    # GIVEN a plan that raised OwnerMissing at triage
    plan = {"finding": {"action": "raise", "problem": OwnerMissing, "severity": "LOW"}}
    # WHEN a later problem is raised on the same payload
    # THEN its severity is the policy table's, not the plan's OwnerMissing one
    assert planned_severity(problem, plan) == policy.FINDING_SEVERITIES[problem].value == "HIGH"


def test_an_unknown_problem_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"unknown problem 'Bogus'; known: ") as caught:
        planned_severity("Bogus", {})
    assert "\n" not in str(caught.value)


def test_every_problem_has_a_title_here_and_a_severity_in_the_policy() -> None:
    assert set(ALL_PROBLEMS) == set(policy.FINDING_SEVERITIES)


def test_distribution_incomplete_description_lists_the_failed_targets() -> None:
    # GIVEN a distribution where one bucket and one server failed and one bucket succeeded
    results = [
        {"status": "DISTRIBUTED", "target": {"kind": "s3", "bucket": "ok-bucket"}},
        {"status": "FAILED", "target": {"kind": "s3", "bucket": "edge", "prefix": "tls/"}},
        {"status": "FAILED", "target": {"instances": ["i-0abc"], "cert_path": "/etc/a.pem"}},
    ]
    decision = {"summary": "Renewed.", "distribution": {"results": results}}
    # WHEN the description is composed
    text = describe(DistributionIncomplete, decision, "Map state ended early.")
    # THEN it names the failed targets only, after the summary and before the detail
    assert text == (
        "Renewed. Failed targets: s3://edge/tls/; server i-0abc:/etc/a.pem. Map state ended early."
    )
    assert "ok-bucket" not in text


def test_other_problems_do_not_list_targets_and_fall_back_to_the_title() -> None:
    decision = {"distribution": {"results": [{"status": "FAILED", "target": {"kind": "s3"}}]}}
    assert describe(OwnerMissing, decision) == "ACM certificate has no owner."


def test_build_finding_is_valid_asff_for_a_custom_integration() -> None:
    # WHEN a finding is built
    built = finding()
    # THEN every required ASFF field is there, and it is ACTIVE and FAILED
    assert set(built) >= ASFF_REQUIRED
    assert built["SchemaVersion"] == "2018-10-08"
    assert built["Id"] == f"{ARN}/certrelay/CertificateExpired"
    assert (
        built["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    )
    assert built["GeneratorId"] == "certrelay/CertificateExpired"
    assert built["CreatedAt"] == built["UpdatedAt"] == "2025-01-01T12:00:00Z"
    assert built["FindingProviderFields"] == {"Severity": {"Label": "CRITICAL"}}
    assert built["Severity"] == {"Label": "CRITICAL"}
    assert built["Types"] == ["Software and Configuration Checks/AWS Security Best Practices"]
    assert (built["RecordState"], built["Compliance"]) == ("ACTIVE", {"Status": "FAILED"})
    assert "Workflow" not in built  # SHB-03: Security Hub starts it at NEW; analysts own it
    assert built["ProductFields"] == {"certrelay/problem": CertificateExpired}
    [resource] = built["Resources"]
    assert resource["Type"] == "AwsCertificateManagerCertificate"
    assert (resource["Id"], resource["Partition"], resource["Region"]) == (ARN, "aws", REGION)
    assert resource["Details"]["AwsCertificateManagerCertificate"] == {
        "DomainName": "legacy.example.com",
        "Serial": "0a:1b",
        "Status": "EXPIRED",
        "Type": "IMPORTED",
        "NotAfter": "2024-12-31T00:00:00Z",
    }


def test_build_finding_keeps_created_at_and_follows_partition_and_product() -> None:
    built = finding(
        partition="aws-cn",
        region="cn-north-1",
        created_at="2024-12-30T00:00:00Z",
        certificate={"arn": ARN},
    )
    assert (
        built["ProductArn"]
        == f"arn:aws-cn:securityhub:cn-north-1:{ACCOUNT}:product/{ACCOUNT}/default"
    )
    assert built["CreatedAt"] == "2024-12-30T00:00:00Z"
    assert built["UpdatedAt"] == "2025-01-01T12:00:00Z"
    assert "Details" not in built["Resources"][0]  # no facts, no empty Details
    assert finding(product_arn="arn:aws:securityhub:us-east-1::product/x/y")["ProductArn"] == (
        "arn:aws:securityhub:us-east-1::product/x/y"
    )


def test_title_and_description_stay_within_asff_limits_and_carry_no_pem() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQ...\n-----END PRIVATE KEY-----"
    built = finding(title="t" * 400, description="d" * 2000)
    assert len(built["Title"]) == MAX_TITLE
    assert len(built["Description"]) == MAX_DESCRIPTION
    leaked = finding(description=f"Export failed: {pem}")["Description"]
    assert "PRIVATE KEY" not in leaked
    assert "MIIE" not in leaked
    assert leaked.startswith("Export failed:")


def test_all_problems_are_the_six_known_ones() -> None:
    assert set(ALL_PROBLEMS) == {
        RenewalActionRequired, CertificateExpired, CertificateRevoked,
        DistributionIncomplete, ExportRefused, OwnerMissing,
    }  # fmt: skip


def stubbed() -> Stubber:
    """A Security Hub client that answers only what the test queues (no network)."""
    return Stubber(boto3.client("securityhub", region_name=REGION))


def raise_owner_missing(stub: Stubber) -> dict[str, Any]:
    where = {"account": ACCOUNT, "region": REGION, "partition": "aws"}
    return raise_finding(
        stub.client, decision={"certificate": CERTIFICATE}, problem=OwnerMissing, now=NOW, **where
    )


def test_throttling_and_server_errors_become_service_throttled() -> None:
    with stubbed() as stub:
        stub.add_client_error("get_findings", "ThrottlingException", http_status_code=400)
        with pytest.raises(
            ServiceThrottled, match=r"^Security Hub GetFindings: ThrottlingException$"
        ):
            resolve_findings(stub.client, certificate_arn=ARN, now=NOW)
        stub.add_response("get_findings", {"Findings": []})
        stub.add_client_error("batch_import_findings", "InternalException", http_status_code=500)
        with pytest.raises(ServiceThrottled, match="BatchImportFindings"):
            raise_owner_missing(stub)
        stub.assert_no_pending_responses()


def test_a_rejected_finding_raises_security_hubs_message_in_one_line() -> None:
    failed = {"Id": "x", "ErrorCode": "InvalidInput", "ErrorMessage": "Title is\ntoo long"}
    with stubbed() as stub:
        stub.add_response("get_findings", {"Findings": []})
        stub.add_response(
            "batch_import_findings",
            {"FailedCount": 1, "SuccessCount": 0, "FailedFindings": [failed]},
        )
        with pytest.raises(FindingRejected) as caught:
            raise_owner_missing(stub)
    assert str(caught.value) == "Security Hub rejected x: InvalidInput Title is too long"


def test_a_throttled_import_of_one_finding_is_retryable() -> None:
    failed = {"Id": "x", "ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
    with stubbed() as stub:
        stub.add_response("get_findings", {"Findings": []})
        stub.add_response(
            "batch_import_findings",
            {"FailedCount": 1, "SuccessCount": 0, "FailedFindings": [failed]},
        )
        with pytest.raises(ServiceThrottled, match="ThrottlingException Rate exceeded"):
            raise_owner_missing(stub)


def imports_sent(stub: Stubber) -> list[dict[str, Any]]:
    """The findings each BatchImportFindings call sends, as the client was given them."""
    sent: list[dict[str, Any]] = []
    stub.client.meta.events.register(
        "provide-client-params.securityhub.BatchImportFindings",
        lambda params, **_: sent.extend(params["Findings"]),
    )
    return sent


ANALYSTS_FINDING = {  # what GetFindings returns once an analyst has taken the finding on
    **finding(problem=OwnerMissing, severity_label="LOW", created_at="2024-12-30T00:00:00Z"),
    "Workflow": {"Status": "NOTIFIED"},
    "Note": {"Text": "on it", "UpdatedBy": "analyst", "UpdatedAt": "2024-12-30T00:00:00Z"},
}


def test_raising_a_finding_that_exists_sends_severity_but_never_a_workflow() -> None:
    """SHB-03: severity goes through FindingProviderFields; a re-import sends no Workflow, so
    it cannot reset the state an analyst gave the finding."""
    with stubbed() as stub:
        sent = imports_sent(stub)
        # GIVEN Security Hub holds the certificate's ACTIVE finding, NOTIFIED by an analyst
        stub.add_response("get_findings", {"Findings": [ANALYSTS_FINDING]})
        stub.add_response("batch_import_findings", {"FailedCount": 0, "SuccessCount": 1})
        # WHEN the same problem is raised again
        raise_owner_missing(stub)
        stub.assert_no_pending_responses()
    # THEN the update carries the severity and the original CreatedAt, and no Workflow
    [update] = sent
    assert update["FindingProviderFields"] == {"Severity": {"Label": "LOW"}}
    assert update["CreatedAt"] == "2024-12-30T00:00:00Z"
    assert "Workflow" not in update
    assert "Note" not in update


def test_resolving_archives_and_passes_the_finding_without_touching_its_workflow() -> None:
    """SHB-03: resolution is RecordState ARCHIVED plus Compliance PASSED; the analyst's
    Workflow and Note, read back with the finding, are not sent back."""
    with stubbed() as stub:
        sent = imports_sent(stub)
        # GIVEN the certificate's ACTIVE finding, NOTIFIED by an analyst
        stub.add_response("get_findings", {"Findings": [ANALYSTS_FINDING]})
        stub.add_response("batch_import_findings", {"FailedCount": 0, "SuccessCount": 1})
        # WHEN the certificate's findings are resolved
        archived = resolve_findings(stub.client, certificate_arn=ARN, now=NOW)
        stub.assert_no_pending_responses()
    # THEN that finding is archived and passed, with no Workflow or Note in the import
    [resolution] = sent
    assert archived == [ANALYSTS_FINDING["Id"]]
    assert (resolution["RecordState"], resolution["Compliance"]) == (
        "ARCHIVED",
        {"Status": "PASSED"},
    )
    assert not {"Workflow", "Note"} & set(resolution)
