"""The export's pure parts: passphrases, serials, the checks on what ACM exported, settings."""

from __future__ import annotations

import hashlib
import ipaddress
import string
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certrelay.errors import (
    ConfigurationError,
    ExportMismatch,
    InvalidExportRequest,
)
from certrelay.export import (
    PASSPHRASE_ALPHABET,
    ExportSettings,
    bundle_files,
    export_certificate,
    new_passphrase,
    parse_serial,
    serial_text,
    verify_export,
)

NOW = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
PASSPHRASE = "correct-horse-battery-staple-0123456789"
SERIAL = 0x0A1B2C3D4E5F60718293A4B5C6D7E8F9
ENV = {
    "BUNDLE_BUCKET": "certrelay-bundles",
    "BUNDLE_KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab",
    "PASSPHRASE_SECRET_PREFIX": "certrelay/export/",
}


def issue(
    key: ec.EllipticCurvePrivateKey, *, serial: int = SERIAL, not_after: datetime = NOW
) -> x509.Certificate:
    """A CA-less certificate for www.example.com (and an IP SAN), signed by its own key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")])
    sans = [x509.DNSName("www.example.com"), x509.IPAddress(ipaddress.ip_address("10.0.0.7"))]
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_after - timedelta(days=90))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def encrypted(key: ec.EllipticCurvePrivateKey, passphrase: str = PASSPHRASE) -> str:
    """The key as ACM exports it: PKCS#8, encrypted with the passphrase."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def export(key: ec.EllipticCurvePrivateKey) -> tuple[str, str, str]:
    """(certificate, chain, private key) as ExportCertificate returns them."""
    chain_key = ec.generate_private_key(ec.SECP256R1())
    return pem(issue(key)), pem(issue(chain_key, serial=7)), encrypted(key)


def test_passphrases_are_long_random_and_avoid_the_characters_acm_refuses() -> None:
    # WHEN many passphrases are drawn
    draws = [new_passphrase() for _ in range(2000)]
    # THEN each is 32+ printable ASCII characters from the alphabet, never '#', '$' or '%'
    assert all(len(p) >= 32 for p in draws)
    assert set("".join(draws)) <= set(PASSPHRASE_ALPHABET)
    assert not set("#$%") & set(PASSPHRASE_ALPHABET)
    assert set(PASSPHRASE_ALPHABET) <= set(string.printable) - set(string.whitespace)
    # AND they do not repeat, and use the whole alphabet
    assert len(set(draws)) == len(draws)
    assert set("".join(draws)) == set(PASSPHRASE_ALPHABET)


@pytest.mark.parametrize(
    "acm_serial",
    [
        "0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9",
        "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9",
        str(SERIAL),
    ],
)
def test_acm_serials_in_colon_hex_or_decimal_mean_the_same_number(acm_serial: str) -> None:
    assert parse_serial(acm_serial) == SERIAL
    assert serial_text(parse_serial(acm_serial)) == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def test_a_serial_is_spelled_in_whole_bytes() -> None:
    assert (serial_text(0xABC), serial_text(0xABCD), serial_text(1)) == ("0abc", "abcd", "01")


def test_a_serial_that_is_no_number_is_a_mismatch() -> None:
    with pytest.raises(ExportMismatch, match="neither colon hex nor decimal"):
        parse_serial("zz:yy")


def test_a_matching_export_yields_fingerprint_serial_dates_and_sans(
    export: tuple[str, str, str],
) -> None:
    # GIVEN an export whose certificate matches ACM's serial and NotAfter
    # WHEN it is verified
    checked = verify_export(*export, PASSPHRASE, acm_serial=serial_text(SERIAL), acm_not_after=NOW)
    # THEN the facts come from the certificate itself
    der = x509.load_pem_x509_certificate(export[0].encode()).public_bytes(
        serialization.Encoding.DER
    )
    assert checked.fingerprint_sha256 == hashlib.sha256(der).hexdigest()
    assert checked.serial == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert (checked.not_before, checked.not_after) == (NOW - timedelta(days=90), NOW)
    assert checked.sans == ("www.example.com", "10.0.0.7")


def test_acm_not_after_matches_to_the_second() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    export = pem(issue(key)), pem(issue(key)), encrypted(key)
    later = NOW + timedelta(milliseconds=400)  # ACM's sub-second part does not count
    verify_export(*export, PASSPHRASE, acm_serial=serial_text(SERIAL), acm_not_after=later)
    with pytest.raises(ExportMismatch, match="ends 2030-05-01T12:00:00Z, ACM says"):
        verify_export(
            *export,
            PASSPHRASE,
            acm_serial=serial_text(SERIAL),
            acm_not_after=NOW + timedelta(seconds=1),
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("another_key", "does not belong to the certificate"),
        ("wrong_passphrase", "does not open with the passphrase"),
        ("unencrypted_key", "not an encrypted PKCS#8 key"),
        ("another_serial", "has serial 0a1b2c3d4e5f60718293a4b5c6d7e8f9, ACM says 0b"),
        ("no_not_after", "ACM says none"),
        ("garbled_chain", "not valid PEM"),
    ],
)
def test_an_export_that_disagrees_with_acm_is_a_mismatch(
    export: tuple[str, str, str], change: str, message: str
) -> None:
    # GIVEN an export with one thing wrong
    certificate, chain, private_key = export
    acm_serial, acm_not_after, passphrase = serial_text(SERIAL), NOW, PASSPHRASE
    if change == "another_key":
        private_key = encrypted(ec.generate_private_key(ec.SECP256R1()))
    elif change == "wrong_passphrase":
        passphrase = "not-" + PASSPHRASE
    elif change == "unencrypted_key":
        private_key = (
            serialization.load_pem_private_key(private_key.encode(), PASSPHRASE.encode())
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            .decode()
        )
    elif change == "another_serial":
        acm_serial = "0b"
    elif change == "no_not_after":
        acm_not_after = None  # type: ignore[assignment]
    else:
        chain = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    # WHEN / THEN verification names it
    with pytest.raises(ExportMismatch, match=message):
        verify_export(
            certificate,
            chain,
            private_key,
            passphrase,
            acm_serial=acm_serial,
            acm_not_after=acm_not_after,
        )


def test_a_mismatch_message_never_holds_key_material(export: tuple[str, str, str]) -> None:
    other = encrypted(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ExportMismatch) as raised:
        verify_export(export[0], export[1], other, PASSPHRASE, acm_serial="0a", acm_not_after=NOW)
    assert PASSPHRASE not in str(raised.value)
    assert "-----BEGIN" not in str(raised.value)


def test_the_bundle_files_are_cert_chain_fullchain_and_the_key_as_exported() -> None:
    files = bundle_files("CERT\n", "\nCHAIN-1\nCHAIN-2", "ENCRYPTED KEY\n\n")
    assert files == {
        "cert": b"CERT\n",
        "chain": b"CHAIN-1\nCHAIN-2\n",
        "fullchain": b"CERT\nCHAIN-1\nCHAIN-2\n",
        "privkey": b"ENCRYPTED KEY\n\n",
    }


def test_settings_come_from_the_environment() -> None:
    settings = ExportSettings.from_env({**ENV, "PASSPHRASE_KMS_KEY_ARN": " alias/certrelay "})
    assert settings == ExportSettings(
        ENV["BUNDLE_BUCKET"],
        ENV["BUNDLE_KMS_KEY_ARN"],
        ENV["PASSPHRASE_SECRET_PREFIX"],
        "alias/certrelay",
    )
    assert ExportSettings.from_env(ENV).passphrase_kms_key_arn is None


def test_missing_settings_are_one_configuration_error_naming_them() -> None:
    env = {**ENV, "BUNDLE_BUCKET": " ", "BUNDLE_KMS_KEY_ARN": ""}
    with pytest.raises(ConfigurationError, match=r"^BUNDLE_BUCKET, BUNDLE_KMS_KEY_ARN not set"):
        ExportSettings.from_env(env)


def test_a_secret_prefix_secrets_manager_would_refuse_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="PASSPHRASE_SECRET_PREFIX"):
        ExportSettings.from_env({**ENV, "PASSPHRASE_SECRET_PREFIX": "certrelay export/"})


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"decision": None},
        {"decision": {"certificate": {}}},
        {"decision": {"certificate": {"arn": "arn:aws:iam::123456789012:role/x"}}},
        {
            "decision": {
                "certificate": {"arn": "arn:aws:acm:us-east-1:123456789012:certificate/../x"}
            }
        },
    ],
)
def test_a_payload_without_a_certificate_arn_is_an_invalid_request(event: dict[str, Any]) -> None:
    # Rejected before any AWS call: the clients are never touched
    untouched = cast(Any, object())
    with pytest.raises(InvalidExportRequest):
        export_certificate(
            event,
            acm_client=untouched,
            s3_client=untouched,
            secrets_client=untouched,
            settings=ExportSettings.from_env(ENV),
            profiles={},
            guard=untouched,
            now=NOW,
        )


def test_the_export_cap_counts_utc_days_whatever_the_clocks_zone() -> None:
    from datetime import timezone

    from certrelay.export_guard import claim_key, day_key

    berlin_morning = datetime(2026, 3, 2, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert day_key("web", berlin_morning) == "export-day#web#2026-03-01"
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    assert claim_key(arn, "0a1b") == f"export#{arn}#0a1b"
