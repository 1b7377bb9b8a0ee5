"""The tests' own changes to moto (tests/conftest.py) spare work and change no answer.

GIVEN moto as every test runs it, WHEN ACM issues a certificate, THEN its key (read back without
cryptography's check of an RSA key's numbers) is a sound key of that certificate; WHEN a key whose
numbers do not hold is imported, THEN ACM still refuses it; WHEN a private CA is created, THEN its
key is made when first read, signs its CSR, and is its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from moto import mock_aws
from moto.acmpca import models as acmpca

REGION = "us-east-1"
ACCOUNT = "123456789012"
PASSPHRASE = b"a-passphrase-of-thirty-two-chars"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def new_ca(name: str) -> str:
    return str(
        boto3.client("acm-pca", region_name=REGION).create_certificate_authority(
            CertificateAuthorityConfiguration={
                "KeyAlgorithm": "RSA_2048",
                "SigningAlgorithm": "SHA256WITHRSA",
                "Subject": {"CommonName": name},
            },
            CertificateAuthorityType="ROOT",
        )["CertificateAuthorityArn"]
    )


def authority(arn: str) -> Any:
    return acmpca.acmpca_backends[ACCOUNT][REGION].certificate_authorities[arn]


def test_given_a_private_certificate_when_exported_then_its_key_is_sound_and_its_own(aws) -> None:
    acm = boto3.client("acm", region_name=REGION)
    arn = acm.request_certificate(
        DomainName="www.example.com", CertificateAuthorityArn=new_ca("issuing")
    )["CertificateArn"]

    exported = acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)

    key = serialization.load_pem_private_key(exported["PrivateKey"].encode(), PASSPHRASE)
    assert isinstance(key, rsa.RSAPrivateKey)  # read with the check of its numbers
    certificate = x509.load_pem_x509_certificate(exported["Certificate"].encode())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()


def test_given_a_key_whose_numbers_do_not_hold_when_imported_then_acm_refuses_it(aws) -> None:
    good = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = good.private_numbers()
    broken = rsa.RSAPrivateNumbers(
        p=numbers.p,
        q=numbers.q,
        d=numbers.d + 2,
        dmp1=numbers.dmp1,
        dmq1=numbers.dmq1,
        iqmp=numbers.iqmp,
        public_numbers=numbers.public_numbers,
    ).private_key(unsafe_skip_rsa_key_validation=True)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy.example.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(good.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(good, hashes.SHA256())
    )

    with pytest.raises(ClientError) as refused:
        boto3.client("acm", region_name=REGION).import_certificate(
            Certificate=certificate.public_bytes(serialization.Encoding.PEM),
            PrivateKey=broken.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "private key" in refused.value.response["Error"]["Message"]


def test_given_a_private_ca_when_its_key_is_first_read_then_made_signing_its_csr(aws) -> None:
    pca = boto3.client("acm-pca", region_name=REGION)
    first, second = new_ca("first"), new_ca("second")
    assert authority(first).__dict__.get("_private_bytes") == b"", "made at creation"

    csr = x509.load_pem_x509_csr(
        pca.get_certificate_authority_csr(CertificateAuthorityArn=first)["Csr"].encode()
    )

    key = authority(first).key
    assert csr.is_signature_valid
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()
    assert authority(first).key.private_numbers() == key.private_numbers()  # made once
    other = authority(second).key.public_key().public_numbers()
    assert other != key.public_key().public_numbers()
