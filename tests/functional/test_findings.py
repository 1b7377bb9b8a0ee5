"""Findings raised and resolved against moto's Security Hub, directly and through the handler."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from certrelay import policy
from certrelay.accounts import kept_client
from certrelay.errors import ConfigurationError, UnknownState
from certrelay.findings import (
    ALL_PROBLEMS,
    CertificateExpired,
    CertificateRevoked,
    DistributionIncomplete,
    OwnerMissing,
    RenewalActionRequired,
    build_finding,
    finding_id,
    raise_finding,
    resolve_findings,
)
from certrelay.workflow import check_result
from functions.findings import app

ACCOUNT, REGION = "123456789012", "us-east-1"
ARN = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0000aaaa-1111-2222-3333-444455556666"
OTHER = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/9999ffff-1111-2222-3333-444455556666"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:CertrelayStateMachine:run-1"
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
WHERE = {"account": ACCOUNT, "region": REGION, "partition": "aws"}


@dataclass(frozen=True)
class FakeContext:
    function_name: str = "certrelay-findings"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:certrelay-findings"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


def decision(arn: str = ARN, *, in_use: bool = True, **extra: Any) -> dict[str, Any]:
    """The state machine's decision data, as the findings task receives it."""
    certificate = {
        "arn": arn, "domain": "legacy.example.com", "type": "IMPORTED", "status": "EXPIRED",
        "serial": "0a:1b", "not_after": "2024-12-31T00:00:00Z", "in_use": in_use,
    }  # fmt: skip
    return {"certificate": certificate, "reason": "EXPIRED", "summary": "It expired.", **extra}


@pytest.fixture
def securityhub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("securityhub", region_name=REGION)
        client.enable_security_hub()
        kept_client.cache_clear()  # clients made in an earlier mock would reach real AWS
        yield client
        kept_client.cache_clear()  # clients made in an earlier mock would reach real AWS


def stored(securityhub: Any, identifier: str | None = None) -> list[dict[str, Any]]:
    """Every finding moto holds (all pages), or those with `identifier`."""
    findings: list[dict[str, Any]] = []
    for page in securityhub.get_paginator("get_findings").paginate():
        findings += page["Findings"]
    return [f for f in findings if identifier is None or f["Id"] == identifier]


def raise_(securityhub: Any, problem: str, *, now: datetime = NOW, **kw: Any) -> dict[str, Any]:
    return raise_finding(securityhub, decision=decision(**kw), problem=problem, now=now, **WHERE)


def planned(problem: str, *, in_use: bool) -> dict[str, Any]:
    """The finding part of a plan that raises `problem`, as the policy decides it."""
    severity = policy.finding_severity(problem, in_use=in_use).value
    return {"action": "raise", "problem": problem, "severity": severity}


@pytest.mark.parametrize(
    ("problem", "in_use", "severity"),
    [
        (RenewalActionRequired, True, "HIGH"), (CertificateExpired, True, "CRITICAL"),
        (CertificateExpired, False, "HIGH"), (CertificateRevoked, False, "CRITICAL"),
        (DistributionIncomplete, False, "HIGH"), (OwnerMissing, True, "LOW"),
    ],
)  # fmt: skip
def test_each_problem_is_imported_with_its_severity(
    securityhub: Any, problem: str, in_use: bool, severity: str
) -> None:
    # WHEN the problem is raised for a certificate (in use or not), triage's plan raising it
    # (DistributionIncomplete is raised later: the plan then holds no finding for it)
    plan = planned(problem, in_use=in_use) if problem != DistributionIncomplete else None
    raised = raise_(securityhub, problem, in_use=in_use, finding=plan)
    # THEN Security Hub holds one ACTIVE finding with that severity
    assert raised == {"id": finding_id(ARN, problem), "problem": problem, "severity": severity}
    [found] = stored(securityhub)
    assert found["Id"] == raised["id"]
    labels = (found["FindingProviderFields"]["Severity"]["Label"], found["Severity"]["Label"])
    assert labels == (severity, severity)
    assert found["RecordState"] == "ACTIVE"
    assert found["Resources"][0]["Id"] == ARN


def test_raising_the_same_problem_twice_updates_one_finding(securityhub: Any) -> None:
    # GIVEN an expired-certificate finding raised at NOW
    raise_(securityhub, CertificateExpired)
    # WHEN the same problem is raised an hour later
    raise_(securityhub, CertificateExpired, now=NOW + timedelta(hours=1))
    # THEN there is still one finding: UpdatedAt moved, CreatedAt kept
    [found] = stored(securityhub)
    assert found["UpdatedAt"] == "2025-01-01T13:00:00Z"
    assert found["CreatedAt"] == "2025-01-01T12:00:00Z"


def test_different_problems_are_separate_findings(securityhub: Any) -> None:
    for problem in ALL_PROBLEMS:
        raise_(securityhub, problem)
    found = {f["Id"]: f["ProductFields"]["certrelay/problem"] for f in stored(securityhub)}
    assert found == {finding_id(ARN, problem): problem for problem in ALL_PROBLEMS}


def test_resolve_archives_only_this_certificates_active_findings(securityhub: Any) -> None:
    # GIVEN two findings on the certificate and one on another certificate
    raise_(securityhub, CertificateExpired)
    raise_(securityhub, OwnerMissing)
    raise_(securityhub, CertificateExpired, arn=OTHER)
    # WHEN the certificate's findings are resolved
    later = NOW + timedelta(days=1)
    archived = resolve_findings(securityhub, certificate_arn=ARN, now=later)
    # THEN both of its findings are archived and passed; the other stays ACTIVE
    # (certrelay never sends Workflow: Security Hub and the analysts keep it)
    assert archived == [finding_id(ARN, CertificateExpired), finding_id(ARN, OwnerMissing)]
    for identifier in archived:
        [found] = stored(securityhub, identifier)
        assert (found["RecordState"], found["Compliance"]["Status"]) == ("ARCHIVED", "PASSED")
        assert "Workflow" not in found
        assert found["UpdatedAt"] == "2025-01-02T12:00:00Z"
        assert found["CreatedAt"] == "2025-01-01T12:00:00Z"
        assert found["Title"].startswith("ACM certificate")
    [other] = stored(securityhub, finding_id(OTHER, CertificateExpired))
    assert (other["RecordState"], other["Compliance"]["Status"]) == ("ACTIVE", "FAILED")
    # AND resolving again finds nothing open
    assert resolve_findings(securityhub, certificate_arn=ARN, now=later) == []


def analyst_sets_workflow(identifier: str, status: str) -> None:
    """What BatchUpdateFindings (which moto lacks) does when an analyst takes a finding on."""
    from moto.securityhub.models import securityhub_backends

    backend = securityhub_backends[ACCOUNT][REGION]
    [finding] = [f for f in backend.findings if f.id == identifier]
    finding.data["Workflow"] = {"Status": status}


def test_an_analysts_workflow_survives_raising_again_and_resolving(securityhub: Any) -> None:
    """SHB-03: certrelay never sends Workflow, so re-raising or resolving a finding leaves the
    state an analyst gave it."""
    # GIVEN an expired-certificate finding that an analyst marked NOTIFIED
    identifier = raise_(securityhub, CertificateExpired)["id"]
    analyst_sets_workflow(identifier, "NOTIFIED")
    # WHEN certrelay raises the same problem again
    raise_(securityhub, CertificateExpired, now=NOW + timedelta(hours=1))
    # THEN the finding is updated and still NOTIFIED
    [found] = stored(securityhub, identifier)
    assert (found["UpdatedAt"], found["Workflow"]) == (
        "2025-01-01T13:00:00Z",
        {"Status": "NOTIFIED"},
    )
    # AND WHEN it is resolved, it is archived and passed, still NOTIFIED as far as certrelay goes
    resolve_findings(securityhub, certificate_arn=ARN, now=NOW + timedelta(days=1))
    [found] = stored(securityhub, identifier)
    assert (found["RecordState"], found["Compliance"]["Status"]) == ("ARCHIVED", "PASSED")
    assert found["Workflow"] == {"Status": "NOTIFIED"}


def test_resolve_with_nothing_open_returns_nothing_and_imports_nothing(securityhub: Any) -> None:
    assert resolve_findings(securityhub, certificate_arn=ARN, now=NOW) == []
    assert stored(securityhub) == []


def test_resolve_can_be_limited_to_some_problems(securityhub: Any) -> None:
    for problem in (CertificateExpired, OwnerMissing):
        raise_(securityhub, problem)
    archived = resolve_findings(securityhub, certificate_arn=ARN, now=NOW, problems=[OwnerMissing])
    assert archived == [finding_id(ARN, OwnerMissing)]
    assert stored(securityhub, finding_id(ARN, CertificateExpired))[0]["RecordState"] == "ACTIVE"


def test_resolve_reads_every_page_of_findings(securityhub: Any) -> None:
    # GIVEN 150 other certificates' findings imported before this certificate's (moto ignores
    # the Id filter, so this certificate's finding only shows on the second page)
    labels = {"problem": OwnerMissing, "severity_label": "LOW", "title": "t", "description": "d"}
    others = [
        build_finding(**WHERE, **labels, certificate={"arn": f"{OTHER}-{n}"}, now=NOW)
        for n in range(150)
    ]
    for chunk in (others[:100], others[100:]):
        assert securityhub.batch_import_findings(Findings=chunk)["FailedCount"] == 0
    raise_(securityhub, CertificateRevoked)
    # WHEN the certificate's findings are resolved
    archived = resolve_findings(securityhub, certificate_arn=ARN, now=NOW)
    # THEN the finding on page two is archived and nothing else is touched
    assert archived == [finding_id(ARN, CertificateRevoked)]
    assert sum(f["RecordState"] == "ACTIVE" for f in stored(securityhub)) == 150


def test_distribution_incomplete_finding_lists_the_failed_targets(securityhub: Any) -> None:
    results = [
        {"status": "FAILED", "target": {"kind": "s3", "bucket": "edge-certs", "prefix": "tls/"}},
        {"status": "DISTRIBUTED", "target": {"kind": "s3", "bucket": "good-certs"}},
    ]
    raise_(securityhub, DistributionIncomplete, distribution={"results": results})
    [found] = stored(securityhub)
    assert "Failed targets: s3://edge-certs/tls/." in found["Description"]
    assert "good-certs" not in found["Description"]


def invoke(event: dict[str, Any], context: FakeContext | None = None) -> dict[str, Any]:
    result: dict[str, Any] = app.handler(event, context or FakeContext())  # type: ignore[arg-type]
    check_result(event["state"], result)  # the state's closed result model (HIS-02)
    return result


def test_handler_raises_then_resolves_a_finding(securityhub: Any) -> None:
    # GIVEN a decision whose finding names the problem, for a certificate in use
    state = decision(finding=planned(CertificateExpired, in_use=True))
    # WHEN "Raise Finding" runs
    raised = invoke({"state": "Raise Finding", "execution": EXECUTION, "decision": state})
    # THEN the small answer names the finding and its severity
    ids = [finding_id(ARN, CertificateExpired)]
    assert raised == {"action": "raise", "ids": ids, "severity": "CRITICAL"}
    [found] = stored(securityhub)
    product = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert (found["AwsAccountId"], found["ProductArn"]) == (ACCOUNT, product)
    # WHEN "Resolve Findings" runs for the same certificate
    resolved = invoke({"state": "Resolve Finding", "execution": EXECUTION, "decision": state})
    # THEN the finding is archived
    assert resolved == {"action": "resolve", "ids": raised["ids"]}
    assert stored(securityhub)[0]["RecordState"] == "ARCHIVED"


def test_handler_problem_and_detail_from_the_event_win(securityhub: Any) -> None:
    event = {
        "state": "Raise Finding",
        "problem": OwnerMissing,
        "detail": "Tag the certificate with certrelay:owner.",
        "execution": EXECUTION,
        "decision": decision(finding={"problem": CertificateExpired}),
    }
    assert invoke(event)["severity"] == "LOW"
    [found] = stored(securityhub)
    assert found["Id"] == finding_id(ARN, OwnerMissing)
    assert found["Description"] == "It expired. Tag the certificate with certrelay:owner."


def test_handler_refuses_a_state_it_does_not_implement(securityhub: Any) -> None:
    # GIVEN a payload naming a state the findings function has no code for
    event = {"state": "Delete Finding", "execution": EXECUTION, "decision": decision()}
    # WHEN it is invoked THEN a typed, not retried error names the state, and nothing is imported
    with pytest.raises(UnknownState, match="'Delete Finding'") as caught:
        invoke(event)
    assert not caught.value.retryable
    assert stored(securityhub) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"state": "Raise Finding", "problem": "Bogus", "decision": decision()}, "unknown problem"),
        ({"state": "Raise Finding", "decision": decision()}, "unknown problem ''"),
        ({"state": "Resolve Finding", "decision": {}}, "no finding id"),
    ],
)
def test_handler_refuses_bad_input_in_one_line(
    securityhub: Any, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        invoke(event)
    assert "\n" not in str(caught.value)
    assert stored(securityhub) == []


def test_handler_needs_an_account_from_the_function_arn(
    securityhub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", REGION)
    with pytest.raises(ConfigurationError, match="cannot tell account"):
        invoke(
            {"state": "Close Findings", "decision": decision()},
            FakeContext(invoked_function_arn=""),
        )
