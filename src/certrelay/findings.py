"""Security Hub findings: one ASFF finding per certificate and problem, raised and resolved.

The Id is the certificate ARN plus the problem, so raising again updates (never duplicates) and
resolving archives exactly what was raised. Descriptions carry references, never key material.
Severity is the policy's (the plan's, or for a problem raised later its table's) and goes through
FindingProviderFields. Workflow is never sent: it belongs to the analysts
(Security Hub starts a finding at NEW, and resets it to NEW if an archived one becomes ACTIVE).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from certrelay import reasons
from certrelay.certificates import TRANSIENT_ERRORS
from certrelay.distribution import summarize
from certrelay.errors import CertrelayError, ServiceThrottled
from certrelay.text import iso_z

# The problems, named by the policy (certrelay.reasons, which also gives each its severity).
RenewalActionRequired = reasons.RENEWAL_ACTION_REQUIRED  # ACM cannot renew until someone acts
CertificateExpired = reasons.CERTIFICATE_EXPIRED  # the certificate is past its NotAfter
CertificateRevoked = reasons.CERTIFICATE_REVOKED  # the issuing CA revoked the certificate
DistributionIncomplete = (
    reasons.DISTRIBUTION_INCOMPLETE
)  # some targets lack the renewed certificate
ExportRefused = reasons.EXPORT_REFUSED  # the renewed certificate was refused at export
OwnerMissing = reasons.OWNER_MISSING  # no owner tag or profile names who looks after it

SCHEMA_VERSION = "2018-10-08"
FINDING_TYPES = ["Software and Configuration Checks/AWS Security Best Practices"]
RESOURCE_TYPE = "AwsCertificateManagerCertificate"
MAX_ID, MAX_TITLE, MAX_DESCRIPTION = 512, 256, 1024
MAX_PAGES = 100  # GetFindings pages read per lookup: 10,000 findings when filters are ignored


# What each problem is called in Security Hub.
TITLES: dict[str, str] = {
    RenewalActionRequired: "ACM certificate renewal needs action",
    CertificateExpired: "ACM certificate expired",
    CertificateRevoked: "ACM certificate revoked",
    DistributionIncomplete: "Renewed certificate not distributed everywhere",
    ExportRefused: "Renewed certificate refused at export",
    OwnerMissing: "ACM certificate has no owner",
}
ALL_PROBLEMS: tuple[str, ...] = tuple(TITLES)


class FindingRejected(CertrelayError):
    """Security Hub refused to import a finding (BatchImportFindings' FailedFindings)."""


def finding_id(certificate_arn: str, problem: str) -> str:
    """The deterministic Id of one certificate's finding for one problem."""
    identifier = f"{certificate_arn}/certrelay/{problem}"
    if not certificate_arn.startswith("arn:") or len(identifier) > MAX_ID:
        raise ValueError(f"no finding id for {problem} of certificate {certificate_arn!r}")
    return identifier


def planned_severity(problem: str, decision: Mapping[str, Any]) -> str:
    """The severity the plan gives the problem it raises; a problem raised later in the run
    (an incomplete distribution, a refused export) has the policy's severity for it."""
    planned = decision.get("finding") or {}
    if planned.get("problem") == problem and planned.get("severity"):
        return str(planned["severity"])
    return reasons.finding_severity(problem).value


def describe(problem: str, decision: Mapping[str, Any], detail: str = "") -> str:
    """Description text: the decision's summary, failed targets, then the caller's detail."""
    results = list((decision.get("distribution") or {}).get("results") or [])
    failed = summarize(results)["failed_targets"] if problem == DistributionIncomplete else []
    targets = f"Failed targets: {'; '.join(failed)}." if failed else ""
    parts = (str(decision.get("summary") or ""), targets, detail)
    return " ".join(p.strip() for p in parts if p.strip()) or _title(problem) + "."


def build_finding(
    *,
    account: str,
    region: str,
    partition: str,
    certificate: Mapping[str, Any],
    problem: str,
    severity_label: str,
    title: str,
    description: str,
    now: datetime,
    product_arn: str | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """One ASFF finding about one certificate, ACTIVE and FAILED, with no Workflow."""
    arn, moment = str(certificate["arn"]), iso_z(now)
    resource = {"Type": RESOURCE_TYPE, "Id": arn, "Partition": partition, "Region": region}
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(arn, problem),
        "ProductArn": product_arn
        or f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default",
        "GeneratorId": f"certrelay/{problem}",
        "AwsAccountId": account,
        "Types": list(FINDING_TYPES),
        "CreatedAt": created_at or moment,
        "UpdatedAt": moment,
        "Severity": {"Label": severity_label},
        "FindingProviderFields": {"Severity": {"Label": severity_label}},
        "Title": _clip(title, MAX_TITLE),
        "Description": _clip(description, MAX_DESCRIPTION),
        "Resources": [{**resource, **_details(certificate)}],
        "Compliance": {"Status": "FAILED"},
        "RecordState": "ACTIVE",
        "ProductFields": {"certrelay/problem": problem},
    }


def raise_finding(
    securityhub: Any,
    *,
    decision: Mapping[str, Any],
    problem: str,
    now: datetime,
    account: str,
    region: str,
    partition: str,
    detail: str = "",
) -> dict[str, Any]:
    """Import (or update) the certificate's finding for `problem`; CreatedAt survives updates."""
    certificate = decision.get("certificate") or {}
    identifier = finding_id(str(certificate.get("arn") or ""), problem)
    severity = planned_severity(problem, decision)
    existing = active_findings(securityhub, [identifier])
    finding = build_finding(
        account=account,
        region=region,
        partition=partition,
        certificate=certificate,
        problem=problem,
        severity_label=severity,
        title=f"{_title(problem)}: {certificate.get('domain') or certificate['arn']}",
        description=describe(problem, decision, detail),
        now=now,
        created_at=existing[0].get("CreatedAt") if existing else None,
    )
    _import(securityhub, [finding])
    return {"id": identifier, "problem": problem, "severity": severity}


def resolve_findings(
    securityhub: Any,
    *,
    certificate_arn: str,
    now: datetime,
    problems: Iterable[str] = ALL_PROBLEMS,
) -> list[str]:
    """Archive the certificate's ACTIVE findings for `problems`; returns the archived Ids."""
    ids = [finding_id(certificate_arn, problem) for problem in problems if _title(problem)]
    archived = [
        {
            **{key: value for key, value in found.items() if key in _OWN_KEYS},
            "UpdatedAt": iso_z(now),
            "RecordState": "ARCHIVED",
            "Compliance": {"Status": "PASSED"},
        }
        for found in active_findings(securityhub, ids)
    ]
    if archived:
        _import(securityhub, archived)
    return [str(finding["Id"]) for finding in archived]


def active_findings(securityhub: Any, ids: list[str]) -> list[dict[str, Any]]:
    """The ACTIVE findings among `ids`, every page; checked here too, as a filter may be ignored."""
    request: dict[str, Any] = {
        "Filters": {
            "Id": [{"Value": identifier, "Comparison": "EQUALS"} for identifier in ids],
            "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        },
        "MaxResults": 100,
    }
    found: dict[str, dict[str, Any]] = {}
    for _ in range(MAX_PAGES):
        page = _call(securityhub.get_findings, **request)
        for finding in page.get("Findings") or []:
            if finding.get("Id") in ids and finding.get("RecordState") == "ACTIVE":
                found[finding["Id"]] = finding
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    return [found[identifier] for identifier in ids if identifier in found]


_OWN_KEYS = frozenset({  # what certrelay writes, so what it keeps when it re-imports a finding
    "SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId", "Types", "CreatedAt",
    "UpdatedAt", "Severity", "FindingProviderFields", "Title", "Description", "Resources",
    "Compliance", "RecordState", "ProductFields",
})  # fmt: skip
_DETAILS = {  # ASFF certificate details, from the decision's certificate facts
    "DomainName": "domain", "Serial": "serial", "Status": "status", "Type": "type",
    "NotAfter": "not_after",
}  # fmt: skip


def _import(securityhub: Any, findings: list[dict[str, Any]]) -> None:
    answer = _call(securityhub.batch_import_findings, Findings=findings)
    if answer.get("FailedCount") or answer.get("FailedFindings"):
        first = (answer.get("FailedFindings") or [{}])[0]
        code = str(first.get("ErrorCode") or "Unknown")
        message = " ".join(str(first.get("ErrorMessage") or "").split())
        line = f"Security Hub rejected {first.get('Id', 'a finding')}: {code} {message}".strip()
        raise (ServiceThrottled if code in TRANSIENT_ERRORS else FindingRejected)(line)


def _call(operation: Any, **kwargs: Any) -> dict[str, Any]:
    """Call Security Hub; throttling and 5xx answers become ServiceThrottled."""
    try:
        return dict(operation(**kwargs))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_ERRORS or status >= 500:
            raise ServiceThrottled(f"Security Hub {error.operation_name}: {code}") from error
        raise


def _title(problem: str) -> str:
    if problem not in TITLES:
        raise ValueError(f"unknown problem {problem!r}; known: {', '.join(TITLES)}")
    return TITLES[problem]


def _details(certificate: Mapping[str, Any]) -> dict[str, Any]:
    facts = {name: str(certificate[key]) for name, key in _DETAILS.items() if certificate.get(key)}
    return {"Details": {"AwsCertificateManagerCertificate": facts}} if facts else {}


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut before any PEM armour: findings never carry key material."""
    cut = text.find("-----BEGIN")
    text = text if cut < 0 else text[:cut].rstrip() + " [PEM content removed]"
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
