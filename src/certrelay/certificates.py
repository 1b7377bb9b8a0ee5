"""What ACM says about a certificate now (events are hints; ACM is the truth).

`read_certificate` is the small AWS adapter: DescribeCertificate + ListTagsForCertificate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from botocore.exceptions import ClientError

from certrelay.errors import ServiceThrottled

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient

CertificateType = Literal["PRIVATE", "IMPORTED", "AMAZON_ISSUED"]

# ClientError codes that mean "try again later": the state machine retries ServiceThrottled.
TRANSIENT_ERRORS = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestInProgressException",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


@dataclass(frozen=True)
class Certificate:
    """The facts triage needs about one ACM certificate."""

    arn: str
    domain: str
    sans: tuple[str, ...]
    type: CertificateType
    status: str
    serial: str | None
    not_before: datetime | None
    not_after: datetime | None
    in_use: bool
    renewal_eligibility: str | None
    exportable: bool
    tags: dict[str, str] = field(default_factory=dict)
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    key_algorithm: str = ""  # ACM's KeyAlgorithm, e.g. RSA_2048, EC_prime256v1
    issuer: str = ""  # the issuing private CA's ARN, else ACM's Issuer (the issuer's name)

    @property
    def managed(self) -> bool:
        """ACM issued it (public or private CA), so ACM may renew it."""
        return self.type != "IMPORTED"


def read_certificate(acm_client: ACMClient, arn: str) -> Certificate | None:
    """Describe the certificate and read its tags; None when ACM no longer has it."""
    try:
        detail = acm_client.describe_certificate(CertificateArn=arn)["Certificate"]
        tags = acm_client.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ResourceNotFoundException":
            return None
        if code in TRANSIENT_ERRORS or status >= 500:
            raise ServiceThrottled(
                f"ACM {error.operation_name} failed transiently ({code})"
            ) from error
        raise
    return certificate_from_description(
        cast("dict[str, Any]", detail),
        {tag["Key"]: tag.get("Value", "") for tag in tags},
    )


def certificate_from_description(detail: dict[str, Any], tags: dict[str, str]) -> Certificate:
    """Build a Certificate from a DescribeCertificate `Certificate` structure."""
    cert_type = detail.get("Type", "AMAZON_ISSUED")
    export = detail.get("Options", {}).get("Export")
    return Certificate(
        arn=detail["CertificateArn"],
        domain=detail.get("DomainName", ""),
        sans=tuple(detail.get("SubjectAlternativeNames", ())),
        type=cert_type,
        status=detail.get("Status", "UNKNOWN"),
        serial=detail.get("Serial") or None,
        not_before=_utc(detail.get("NotBefore")),
        not_after=_utc(detail.get("NotAfter")),
        in_use=bool(detail.get("InUseBy")),
        renewal_eligibility=detail.get("RenewalEligibility"),
        # private: always; public (AMAZON_ISSUED): only if requested with Options.Export ENABLED
        exportable=cert_type == "PRIVATE" or (cert_type == "AMAZON_ISSUED" and export == "ENABLED"),
        tags=dict(tags),
        revoked_at=_utc(detail.get("RevokedAt")),
        revocation_reason=detail.get("RevocationReason") or None,
        key_algorithm=detail.get("KeyAlgorithm", ""),
        issuer=detail.get("CertificateAuthorityArn") or detail.get("Issuer", ""),
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
