"""read_certificate maps ACM answers: facts, not-found, transient failures, real errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from certrelay.certificates import read_certificate
from certrelay.errors import ServiceThrottled

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0000aaaa-1111-2222-3333-444455556666"


@pytest.fixture
def acm() -> ACMClient:
    # Stubber answers every call; the dummy credentials only let the client sign.
    return boto3.client(
        "acm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_a_private_certificate_in_use_is_exportable_and_in_use(acm: ACMClient) -> None:
    with Stubber(acm) as stub:
        stub.add_response(
            "describe_certificate",
            {
                "Certificate": {
                    "CertificateArn": ARN,
                    "DomainName": "api.internal.example.com",
                    "SubjectAlternativeNames": ["api.internal.example.com"],
                    "Type": "PRIVATE",
                    "Status": "ISSUED",
                    "Serial": "0a:1b",
                    "InUseBy": ["arn:aws:elasticloadbalancing:us-east-1:123456789012:lb/x"],
                    "RenewalEligibility": "ELIGIBLE",
                    "Options": {"Export": "DISABLED"},
                }
            },
            {"CertificateArn": ARN},
        )
        stub.add_response(
            "list_tags_for_certificate",
            {"Tags": [{"Key": "certrelay:owner", "Value": "a@example.com"}]},
            {"CertificateArn": ARN},
        )
        cert = read_certificate(acm, ARN)
    assert cert is not None
    assert (cert.type, cert.in_use, cert.exportable) == ("PRIVATE", True, True)
    assert cert.tags == {"certrelay:owner": "a@example.com"}
    assert cert.not_after is None


def test_a_public_certificate_is_exportable_only_when_export_is_enabled(acm: ACMClient) -> None:
    with Stubber(acm) as stub:
        for export in ("ENABLED", "DISABLED"):
            stub.add_response(
                "describe_certificate",
                {
                    "Certificate": {
                        "CertificateArn": ARN,
                        "DomainName": "example.com",
                        "Type": "AMAZON_ISSUED",
                        "Options": {"Export": export},
                    }
                },
            )
            stub.add_response("list_tags_for_certificate", {})
        enabled, disabled = read_certificate(acm, ARN), read_certificate(acm, ARN)
    assert enabled is not None
    assert enabled.exportable
    assert disabled is not None
    assert not disabled.exportable


def test_a_missing_certificate_reads_as_none(acm: ACMClient) -> None:
    with Stubber(acm) as stub:
        stub.add_client_error(
            "describe_certificate", "ResourceNotFoundException", http_status_code=400
        )
        assert read_certificate(acm, ARN) is None


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("RequestInProgressException", 400),
        ("InternalFailure", 500),
        ("ServiceUnavailable", 503),
        ("SomethingNew", 502),
    ],
)
def test_transient_failures_become_service_throttled(
    acm: ACMClient, code: str, status: int
) -> None:
    with Stubber(acm) as stub:
        stub.add_client_error("describe_certificate", code, http_status_code=status)
        with pytest.raises(ServiceThrottled, match=code):
            read_certificate(acm, ARN)


def test_other_client_errors_propagate(acm: ACMClient) -> None:
    with Stubber(acm) as stub:
        stub.add_client_error("describe_certificate", "AccessDeniedException", http_status_code=400)
        with pytest.raises(ClientError, match="AccessDeniedException"):
            read_certificate(acm, ARN)
