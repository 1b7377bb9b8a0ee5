"""Export Certificate: one ACM certificate out as an encrypted bundle in S3, keyed by serial.

ACM is read again (the decision may be hours old). The export is checked before anything is
stored: the key opens with the passphrase and matches the certificate, serial and NotAfter equal
ACM's. Then the passphrase goes to Secrets Manager, the PEM files to S3 under SSE-KMS and,
last, `manifest.json`, which marks the bundle complete: when it exists, nothing is exported again.
The result and the manifest name the secret and the objects, never the passphrase or the key.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from botocore.exceptions import (
    ClientError,
)
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from certrelay.arns import CERTIFICATE_ARN
from certrelay.bundles import (
    FILES,
    MANIFEST,
    PROFILE_TAG,
    bundle_prefix,
    bundle_result,
    error_code,
    parse_serial,
    read_manifest,
    serial_text,
    transient,
)
from certrelay.certificates import Certificate, read_certificate
from certrelay.errors import (
    ConfigurationError,
    ExportMismatch,
    ExportRefused,
    InvalidExportRequest,
    ProfileMismatch,
)
from certrelay.export_guard import ExportGuard
from certrelay.organization import Organization
from certrelay.profiles import Profile
from certrelay.text import iso_z

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient

# ACM takes printable ASCII except '#', '$' and '%'; this subset is also shell- and URL-safe.
PASSPHRASE_ALPHABET = string.ascii_letters + string.digits + "-_.~+=@"
PASSPHRASE_LENGTH = 40  # about 241 bits
_SECRET_PREFIX = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,256}$")


@dataclass(frozen=True)
class ExportSettings:
    """Where bundles and passphrases go, and under which KMS keys."""

    bucket: str
    bundle_kms_key_arn: str
    secret_prefix: str
    passphrase_kms_key_arn: str | None = None
    export_role_arn: str | None = None  # exempt from the passphrases' Deny (the writer)
    organization: Organization | None = None  # hub mode: its other accounts' servers may read

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ExportSettings:
        """Read and validate the settings; one ConfigurationError line when one is wrong."""
        names = ("BUNDLE_BUCKET", "BUNDLE_KMS_KEY_ARN", "PASSPHRASE_SECRET_PREFIX")
        bucket, key, prefix = (environ.get(name, "").strip() for name in names)
        missing = [
            name for name, value in zip(names, (bucket, key, prefix), strict=True) if not value
        ]
        if missing:
            raise ConfigurationError(f"{', '.join(missing)} not set: the export has nowhere to go")
        if not _SECRET_PREFIX.fullmatch(prefix):
            raise ConfigurationError(
                f"PASSPHRASE_SECRET_PREFIX {prefix!r} may hold only letters, digits and /_+=.@-"
            )
        passphrase_key = environ.get("PASSPHRASE_KMS_KEY_ARN", "").strip() or None
        return cls(bucket, key, prefix, passphrase_key)


@dataclass(frozen=True)
class VerifiedExport:
    """The facts `cryptography` read from an export that matched ACM."""

    serial: str
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime
    sans: tuple[str, ...]


def export_certificate(
    event: Mapping[str, Any],
    *,
    acm_client: ACMClient,
    s3_client: Any,
    secrets_client: Any,
    settings: ExportSettings,
    profiles: Mapping[str, Profile],
    guard: ExportGuard,
    now: datetime,
) -> dict[str, Any]:
    """Export the decision's certificate once per serial; return S3 references, no secrets.

    The profile comes from the certificate's own `certrelay:profile` tag in ACM, never from
    the payload: a payload naming another profile, or a profile that is not deployed or has
    no targets, is refused (ProfileMismatch) before anything is exported. A PRIVATE certificate
    and an exportable public one (Options.Export ENABLED) go the same way. The cost guard
    (certrelay.export_guard) stands between the bucket's answer and ACM: a serial whose bundle
    is there is reused; otherwise it is claimed once and counted against the profile's
    `exports_per_day` before ExportCertificate is called.
    """
    arn, certificate_id = _certificate_arn(event)
    certificate = _exportable(read_certificate(acm_client, arn), arn, now)
    profile = deployed_profile(certificate, claimed(event), profiles)
    serial = serial_text(parse_serial(certificate.serial or ""))
    prefix = bundle_prefix(certificate_id, serial)
    existing = read_manifest(s3_client, settings.bucket, prefix + MANIFEST)
    if existing is not None:
        return bundle_result(existing, settings.bucket, prefix, created=False)

    execution = str(event.get("execution") or "")
    cap = profiles[profile].exports_per_day
    guard.claim(arn, serial, execution=execution, profile=profile, exports_per_day=cap, now=now)
    passphrase = new_passphrase()
    try:
        with transient("ACM"):
            exported = acm_client.export_certificate(
                CertificateArn=arn, Passphrase=passphrase.encode("ascii")
            )
    except Exception:
        guard.release(arn, serial, execution=execution)  # ACM exported nothing
        raise
    pems = (exported["Certificate"], exported.get("CertificateChain", ""), exported["PrivateKey"])
    checked = verify_export(
        *pems, passphrase, acm_serial=serial, acm_not_after=certificate.not_after
    )
    secret_name = f"{settings.secret_prefix}{certificate_id}/{serial}"
    secret_arn, secret_version = _store_passphrase(
        secrets_client, settings, secret_name, passphrase, profile
    )
    files = {
        name: {
            "key": prefix + FILES[name],
            "sha256": hashlib.sha256(body).hexdigest(),
            "version_id": _put(s3_client, settings, prefix + FILES[name], body, profile=profile),
        }
        for name, body in bundle_files(*pems).items()
    }
    manifest = {
        "certificate_arn": arn,
        "serial": checked.serial,
        "fingerprint_sha256": checked.fingerprint_sha256,
        "not_before": iso_z(checked.not_before),
        "not_after": iso_z(checked.not_after),
        "sans": list(checked.sans),
        "files": files,
        "created_at": iso_z(now),
        "secret_arn": secret_arn,
        "secret_version_id": secret_version,  # the version that opens this privkey.pem
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    try:  # If-None-Match: when a concurrent export finished first, its complete bundle stands
        version = _put(
            s3_client, settings, prefix + MANIFEST, body, profile=profile, only_if_new=True
        )
    except ClientError as error:
        winner = read_manifest(s3_client, settings.bucket, prefix + MANIFEST)
        if error_code(error) != "PreconditionFailed" or winner is None:
            raise
        return bundle_result(winner, settings.bucket, prefix, created=False)
    guard.exported(arn, serial, fingerprint=checked.fingerprint_sha256, now=now)
    return bundle_result((manifest, version), settings.bucket, prefix, created=True)


def verify_export(
    certificate_pem: str,
    chain_pem: str,
    private_key_pem: str,
    passphrase: str,
    *,
    acm_serial: str,
    acm_not_after: datetime | None,
) -> VerifiedExport:
    """Check an export against ACM's description; ExportMismatch names the first difference."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
        x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
    except ValueError as error:
        raise ExportMismatch("the exported certificate or chain is not valid PEM") from error
    if "BEGIN ENCRYPTED PRIVATE KEY" not in private_key_pem:
        raise ExportMismatch("the exported private key is not an encrypted PKCS#8 key")
    try:
        key = serialization.load_pem_private_key(
            private_key_pem.encode("ascii"), password=passphrase.encode("ascii")
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise ExportMismatch("the exported key does not open with the passphrase") from error
    if _spki(key.public_key()) != _spki(certificate.public_key()):
        raise ExportMismatch("the exported private key does not belong to the certificate")
    serial = serial_text(certificate.serial_number)
    if serial != acm_serial:
        raise ExportMismatch(f"the exported certificate has serial {serial}, ACM says {acm_serial}")
    not_after = certificate.not_valid_after_utc
    acm_end = iso_z(acm_not_after) if acm_not_after else "none"
    if iso_z(not_after) != acm_end:
        raise ExportMismatch(
            f"the exported certificate ends {iso_z(not_after)}, ACM says {acm_end}"
        )
    return VerifiedExport(
        serial=serial,
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        not_before=certificate.not_valid_before_utc,
        not_after=not_after,
        sans=_sans(certificate),
    )


def bundle_files(certificate_pem: str, chain_pem: str, private_key_pem: str) -> dict[str, bytes]:
    """The four PEM files; the private key exactly as ACM exported it (still encrypted)."""
    certificate = certificate_pem.strip().encode("ascii") + b"\n"
    chain = chain_pem.strip().encode("ascii") + b"\n"
    return {
        "cert": certificate,
        "chain": chain,
        "fullchain": certificate + chain,
        "privkey": private_key_pem.encode("ascii"),
    }


def new_passphrase(length: int = PASSPHRASE_LENGTH) -> str:
    """A random passphrase ACM accepts (no '#', '$' or '%')."""
    return "".join(secrets.choice(PASSPHRASE_ALPHABET) for _ in range(length))


def _certificate_arn(event: Mapping[str, Any]) -> tuple[str, str]:
    decision = event.get("decision")
    certificate = decision.get("certificate") if isinstance(decision, Mapping) else None
    arn = certificate.get("arn") if isinstance(certificate, Mapping) else None
    if not isinstance(arn, str) or (match := CERTIFICATE_ARN.fullmatch(arn)) is None:
        raise InvalidExportRequest("the decision names no ACM certificate ARN to export")
    return arn, match["id"]


def _exportable(certificate: Certificate | None, arn: str, now: datetime) -> Certificate:
    if certificate is None:
        raise ExportRefused(f"{arn} no longer exists in ACM")
    if not certificate.exportable:
        raise ExportRefused(f"{arn} is {certificate.type} and ACM does not allow its export")
    if certificate.status != "ISSUED":
        raise ExportRefused(f"{arn} is {certificate.status}, not ISSUED")
    if certificate.not_after is None or certificate.not_after <= now:
        raise ExportRefused(f"{arn} has expired")
    if not certificate.serial:
        raise ExportRefused(f"{arn} has no serial in ACM")
    return certificate


def claimed(event: Mapping[str, Any]) -> str | None:
    """The profile the payload names (a claim to check, never to act on)."""
    decision = event.get("decision")
    profile = decision.get("profile") if isinstance(decision, Mapping) else None
    return profile if isinstance(profile, str) else None


def deployed_profile(
    certificate: Certificate, claimed_profile: str | None, profiles: Mapping[str, Profile]
) -> str:
    """The certificate's profile as ACM tags it, when the payload agrees and it has targets."""
    tagged = certificate.tags.get(PROFILE_TAG, "").strip()
    if not tagged:
        raise ProfileMismatch(f"{certificate.arn} has no {PROFILE_TAG} tag in ACM")
    if claimed_profile != tagged:
        raise ProfileMismatch(
            f"the payload names profile {claimed_profile!r}; ACM tags the certificate {tagged!r}"
        )
    profile = profiles.get(tagged)
    if profile is None or not profile.targets:
        raise ProfileMismatch(f"profile {tagged!r} is not deployed or has no targets")
    return tagged


def _store_passphrase(
    secrets_client: Any, settings: ExportSettings, name: str, passphrase: str, profile: str
) -> tuple[str, str]:
    """A new secret, or a new version when a crashed earlier run left one: (ARN, version)."""
    kms = {"KmsKeyId": settings.passphrase_kms_key_arn} if settings.passphrase_kms_key_arn else {}
    with transient("Secrets Manager"):
        try:
            response = secrets_client.create_secret(
                Name=name,
                SecretString=passphrase,
                Description="certrelay: the passphrase of one exported certificate bundle",
                Tags=[{"Key": PROFILE_TAG, "Value": profile}],
                **kms,
            )
        except ClientError as error:
            if error_code(error) != "ResourceExistsException":
                raise
            response = secrets_client.put_secret_value(SecretId=name, SecretString=passphrase)
        secrets_client.put_resource_policy(  # on a crashed run's secret too: it may lack one
            SecretId=name,
            ResourcePolicy=json.dumps(
                passphrase_policy(profile, settings.export_role_arn, settings.organization)
            ),
            BlockPublicPolicy=True,
        )
    return str(response["ARN"]), str(response["VersionId"])


def passphrase_policy(
    profile: str, export_role_arn: str | None, organization: Organization | None = None
) -> dict[str, Any]:
    """The secret's resource policy: nobody reads the passphrase but the hosts whose role is
    tagged with its profile (and the export role that wrote it), whatever their IAM allows.

    A hub also allows the servers of its organisation's other accounts (or its listed member
    accounts) tagged with the profile: a secret is readable from another account only when
    its resource policy allows it, and the member's IAM and the key policy allow it too
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples_cross.html).
    `aws:PrincipalOrgID` or `aws:PrincipalAccount` keeps the policy non-public for
    BlockPublicPolicy.
    """
    unless: dict[str, Any] = {"StringNotEquals": {f"aws:PrincipalTag/{PROFILE_TAG}": profile}}
    if export_role_arn:
        unless["ArnNotEquals"] = {"aws:PrincipalArn": export_role_arn}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "OnlyThisProfilesHostsReadThePassphrase",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": unless,
        }
    ]
    members = _member_servers(profile, organization)
    if members is not None:
        statements.append(members)
    return {"Version": "2012-10-17", "Statement": statements}


def _member_servers(profile: str, organization: Organization | None) -> dict[str, Any] | None:
    """Hub mode's Allow for the profile's servers in the other accounts; None otherwise."""
    if organization is None or not organization.is_hub:
        return None
    if organization.organization_id:
        who: dict[str, Any] = {"aws:PrincipalOrgID": organization.organization_id}
    elif organization.member_accounts:
        who = {"aws:PrincipalAccount": sorted(organization.member_accounts)}
    else:
        return None
    return {
        "Sid": "TheOrganizationsHostsOfThisProfileReadThePassphrase",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
        "Condition": {
            "StringEquals": {**who, f"aws:PrincipalTag/{PROFILE_TAG}": profile},
            "StringNotEquals": {"aws:PrincipalAccount": organization.hub_account},
        },
    }


def role_arn(caller_arn: str) -> str:
    """The IAM role ARN (what aws:PrincipalArn holds) of an STS caller ARN; others unchanged.

    `arn:aws:sts::123456789012:assumed-role/Name/session` -> `arn:aws:iam::123456789012:role/Name`.
    """
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        name = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{name}"
    return caller_arn


def _put(
    s3_client: Any,
    settings: ExportSettings,
    key: str,
    body: bytes,
    *,
    profile: str,
    only_if_new: bool = False,
) -> str | None:
    condition = {"IfNoneMatch": "*"} if only_if_new else {}
    with transient("S3"):
        response = s3_client.put_object(
            Bucket=settings.bucket,
            Key=key,
            Body=body,
            ContentType="application/json" if key.endswith(".json") else "application/x-pem-file",
            ChecksumAlgorithm="SHA256",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=settings.bundle_kms_key_arn,
            BucketKeyEnabled=True,
            Tagging=urlencode({PROFILE_TAG: profile}),
            **condition,
        )
    return str(response["VersionId"]) if response.get("VersionId") else None


def _sans(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    ips = (str(ip) for ip in names.get_values_for_type(x509.IPAddress))
    return (*names.get_values_for_type(x509.DNSName), *ips)


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
