"""A fleet file: the certificates, profiles and owners a local environment starts with.

```yaml
account: "123456789012"
region: us-east-1
fallback_owner: security@example.com
profiles: {...}          # optional; same format as config/profiles.yaml, replaces it
certificates:
  web-private: {type: PRIVATE, domain: web.internal.example.com, days_to_expiry: 30,
                tags: {"certrelay:owner": web-team@example.com, "certrelay:profile": web}}
```

Seeding issues each certificate for real (keys and X.509 with `cryptography`): PRIVATE ones
from the fleet's private CA, IMPORTED ones from a third-party CA, AMAZON_ISSUED ones from an
"Amazon"-named CA, with exactly the expiry the fleet gives, so ACM in the engine reports each
certificate's type, dates and renewal eligibility as the fleet says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto.acm.models import CertBundle, acm_backends
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from certrelay.certificates import read_certificate
from certrelay.distribution_record import write_distribution
from certrelay.errors import CertrelayError
from certrelay.policy import current_shape
from certrelay.profiles import Profile

ROOT = Path(__file__).resolve().parents[4]
DEFAULT_FLEET = Path(__file__).resolve().parent / "demo_fleet.yaml"


class FleetError(CertrelayError):
    """The fleet file is missing, unreadable or invalid."""


class FleetDistribution(BaseModel):
    """A distribution already on record when the environment starts (the distribution record
    approval: unless-changed compares a renewal with), to every target of the profile."""

    model_config = ConfigDict(extra="forbid")

    names: list[str] | None = None  # the names distributed then; default: the certificate's own
    verified: bool = True  # every target verified it, and that run succeeded


class FleetCertificate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["PRIVATE", "IMPORTED", "AMAZON_ISSUED"]
    domain: str = Field(min_length=1, max_length=253)
    sans: list[str] = Field(default_factory=list)
    days_to_expiry: int = Field(ge=-3650, le=3650)
    validity_days: int = Field(default=395, ge=1, le=3650)
    in_use: bool = False
    exportable: bool = False
    renewal_eligible: bool | None = None  # default: managed (PRIVATE/AMAZON_ISSUED) are eligible
    tags: dict[str, str] = Field(default_factory=dict)
    distributed: FleetDistribution | None = None


class FleetServer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    # its first reload exits 1 (say, a bad config): the install must roll back and reload again
    reload_fails: bool = False


ACCOUNT_ID = r"^\d{12}$"
REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"


class FleetPlace(BaseModel):
    """One Region of an account: the certificates ACM holds there, the servers that run there."""

    model_config = ConfigDict(extra="forbid")

    certificates: dict[str, FleetCertificate] = Field(default_factory=dict)
    servers: dict[str, FleetServer] = Field(default_factory=dict)


class FleetAccount(BaseModel):
    """Another account of the organisation (organisation mode, `certrelay demo --org`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    # false: an account outside the organisation, whose events the hub must refuse
    member: bool = True
    regions: dict[Annotated[str, StringConstraints(pattern=REGION)], FleetPlace] = Field(
        min_length=1
    )


class Fleet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(default="123456789012", pattern=ACCOUNT_ID)
    region: str = Field(default="us-east-1", pattern=REGION)
    fallback_owner: str = "security@example.com"
    ca_name: str = "certrelay demo private CA"
    profiles: dict[str, Any] | None = None
    certificates: dict[str, FleetCertificate] = Field(default_factory=dict)
    servers: dict[str, FleetServer] = Field(default_factory=dict)  # EC2 instance id -> server
    # Organisation mode only (the single-account engine reads none of it): the other accounts,
    # their Regions, and the certificates and servers in each.
    accounts: dict[Annotated[str, StringConstraints(pattern=ACCOUNT_ID)], FleetAccount] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _names_once(self) -> Fleet:
        """A certificate name or an instance id names one thing in the whole fleet."""
        for what, own in (("certificate", self.certificates), ("server", self.servers)):
            seen = set(own)
            for account, place in self.places():
                for name in place.certificates if what == "certificate" else place.servers:
                    if name in seen:
                        raise ValueError(f"{what} {name!r} appears twice (again in {account})")
                    seen.add(name)
        return self

    def places(self) -> list[tuple[str, FleetPlace]]:
        """("account/region", place) for every Region of every other account, in file order."""
        return [
            (f"{account}/{region}", place)
            for account, spec in self.accounts.items()
            for region, place in spec.regions.items()
        ]

    def placed(self, account: str, region: str) -> Fleet:
        """The fleet as seen from one account and Region: its certificates and servers there."""
        place = self.accounts[account].regions[region]
        return self.model_copy(
            update={
                "account": account,
                "region": region,
                "certificates": place.certificates,
                "servers": place.servers,
                "accounts": {},
            }
        )


# libyaml's safe loader where PyYAML has it (the demo fleet: 2 ms instead of 35 ms); the same
# documents, the same errors (YAMLError, with the line and column)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_fleet(path: Path | None = None) -> Fleet:
    """Read and validate a fleet file (the demo fleet when `path` is None)."""
    path = path or DEFAULT_FLEET
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506
    except OSError as error:
        raise FleetError(f"cannot read fleet file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise FleetError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    try:
        return Fleet.model_validate(raw or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise FleetError(f"{path}: {where}: {first['msg']}") from None


@dataclass(frozen=True)
class SeededCertificate:
    name: str
    arn: str
    spec: FleetCertificate
    not_after: dt.datetime


def seed_certificates(
    fleet: Fleet, *, now: dt.datetime, authorities: Issuers | None = None
) -> dict[str, SeededCertificate]:
    """Issue the fleet's certificates into moto's ACM (moto must be active)."""
    backend = acm_backends[fleet.account][fleet.region]
    authorities = authorities or Issuers(fleet, now)
    seeded: dict[str, SeededCertificate] = {}
    for name, spec in fleet.certificates.items():
        bundle = authorities.issue(spec, now=now)
        backend._certificates[bundle.arn] = bundle
        if spec.tags:
            bundle.tags.add([{"Key": k, "Value": v} for k, v in spec.tags.items()])
        seeded[name] = SeededCertificate(
            name, bundle.arn, spec, now + dt.timedelta(days=spec.days_to_expiry)
        )
    return seeded


def seed_distribution_records(
    certificates: dict[str, SeededCertificate],
    profiles: dict[str, Profile],
    *,
    table: str,
    region: str,
    now: dt.datetime,
    client: Callable[[str], Any],
) -> None:
    """Write each `distributed:` certificate's record as Record Distribution would have.

    `client`: a service's client in `region` (the engine's)."""
    acm, dynamodb = client("acm"), client("dynamodb")
    for seeded in certificates.values():
        if seeded.spec.distributed is None:
            continue
        profile_name = seeded.spec.tags.get("certrelay:profile", "")
        profile = profiles.get(profile_name)
        certificate = read_certificate(acm, seeded.arn)
        if profile is None or certificate is None:
            raise FleetError(f"{seeded.name}: distributed: needs a certificate in a profile")
        targets = profile.target_ids(profile_name)
        shape = current_shape(certificate, [target_id for target_id, _ in targets])
        distributed = seeded.spec.distributed
        if distributed.names is not None:
            shape = replace(shape, names=frozenset(n.lower() for n in distributed.names))
        verified = distributed.verified
        status = "DISTRIBUTED" if verified else "FAILED"
        decision = {
            "certificate": {"arn": seeded.arn},
            "profile": profile_name,
            "bundle": {"serial": "seeded", "fingerprint": ""},
            "distribution": {
                "results": [
                    {"target": tid, "kind": t.kind, "status": status, "detail": "the fleet's"}
                    for tid, t in targets
                ]
            },
            "report": {
                "complete": verified,
                "outcome": "distributed" if verified else "distribution-incomplete",
            },
        }
        write_distribution(
            dynamodb, table, decision, shape, execution="fleet", now=now - dt.timedelta(days=1)
        )


def renew_certificate(
    fleet: Fleet, seeded: SeededCertificate, authorities: Issuers, *, now: dt.datetime
) -> SeededCertificate:
    """What ACM's managed renewal does: a new key and certificate under the same ARN."""
    return reissue_certificate(
        fleet, seeded, authorities, now=now, days_to_expiry=seeded.spec.validity_days
    )


def reissue_certificate(
    fleet: Fleet,
    seeded: SeededCertificate,
    authorities: Issuers,
    *,
    now: dt.datetime,
    days_to_expiry: int,
) -> SeededCertificate:
    """A new key and certificate under the same ARN and tags, expiring `days_to_expiry` days
    from `now` (in the past when negative: ACM then reports it EXPIRED)."""
    backend = certificate_backend(seeded.arn)
    previous = backend._certificates[seeded.arn]
    spec = seeded.spec.model_copy(update={"days_to_expiry": days_to_expiry})
    bundle = authorities.issue(spec, now=now, arn=seeded.arn)
    bundle.tags = previous.tags
    backend._certificates[seeded.arn] = bundle
    return SeededCertificate(
        seeded.name, seeded.arn, spec, now + dt.timedelta(days=spec.days_to_expiry)
    )


def revoke_certificate(
    fleet: Fleet, seeded: SeededCertificate, *, now: dt.datetime, reason: str = "KEY_COMPROMISE"
) -> None:
    """What ACM shows once the certificate is revoked: status REVOKED, RevokedAt, the reason."""
    bundle = certificate_backend(seeded.arn)._certificates[seeded.arn]
    bundle.status = "REVOKED"
    if isinstance(bundle, LocalCertBundle):
        bundle.revoked_at = now
        bundle.revocation_reason = reason


def certificate_backend(arn: str) -> Any:
    """The embedded ACM of the certificate's own account and Region (read from its ARN)."""
    _, _, _, region, account, _ = arn.split(":", 5)
    return acm_backends[account][region]


class Issuers:
    """The three issuers a fleet's certificates come from."""

    def __init__(self, fleet: Fleet, now: dt.datetime) -> None:
        self.fleet = fleet
        self.pca_arn = (
            f"arn:aws:acm-pca:{fleet.region}:{fleet.account}:certificate-authority/"
            "00000000-0000-4000-8000-00000000c0a1"
        )
        self.issuers = {
            "PRIVATE": _self_signed_ca(fleet.ca_name, now),
            "IMPORTED": _self_signed_ca("Example Legacy Issuing CA", now),
            "AMAZON_ISSUED": _self_signed_ca("Amazon RSA 2048 M03", now),
        }

    def issue(
        self, spec: FleetCertificate, *, now: dt.datetime, arn: str | None = None
    ) -> LocalCertBundle:
        ca_key, ca_cert = self.issuers[spec.type]
        key = ec.generate_private_key(ec.SECP256R1())
        not_after = now + dt.timedelta(days=spec.days_to_expiry)
        names = [spec.domain, *[s for s in spec.sans if s != spec.domain]]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.domain)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_after - dt.timedelta(days=spec.validity_days))
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        key_pem = key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        eligible = spec.renewal_eligible
        if eligible is None:
            eligible = spec.type != "IMPORTED"
        account, region = self.fleet.account, self.fleet.region
        if arn is not None:  # the same certificate again, where it is
            _, _, _, region, account, _ = arn.split(":", 5)
        return LocalCertBundle(
            account_id=account,
            region=region,
            certificate=certificate.public_bytes(pem),
            private_key=key_pem,
            chain=ca_cert.public_bytes(pem),
            cert_type=spec.type,
            cert_status="EXPIRED" if spec.days_to_expiry < 0 else "ISSUED",
            cert_authority_arn=self.pca_arn if spec.type == "PRIVATE" else None,
            cert_options={
                "CertificateTransparencyLoggingPreference": "ENABLED",
                "Export": "ENABLED" if spec.exportable else "DISABLED",
            },
            renewal_eligibility="ELIGIBLE" if eligible else "INELIGIBLE",
            arn=arn,
            in_use_by=[_load_balancer_arn(account, region, spec.domain)] if spec.in_use else [],
        )


def _self_signed_ca(common_name: str, now: dt.datetime) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=3650))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _load_balancer_arn(account: str, region: str, domain: str) -> str:
    name = domain.split(".", 1)[0][:32] or "demo"
    return (
        f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/0123456789abcdef"
    )


class LocalCertBundle(CertBundle):
    """moto's CertBundle, taught what a seeded certificate needs: any dates, eligibility, use."""

    def __init__(self, *, renewal_eligibility: str, in_use_by: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.renewal_eligibility = renewal_eligibility
        self.in_use_by = in_use_by
        self.revoked_at: dt.datetime | None = None
        self.revocation_reason: str | None = None

    def validate_certificate(self) -> Any:
        # ACM keeps expired certificates; moto refuses to import them.
        return x509.load_pem_x509_certificate(self.cert)

    def validate_chain(self) -> None:
        # moto checks the leaf's dates here too (not the chain's): the fleet's issuers are valid.
        x509.load_pem_x509_certificates(self.chain)

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = super().describe()
        description["Certificate"]["RenewalEligibility"] = self.renewal_eligibility
        if self.revoked_at is not None:  # as ACM describes a revoked certificate
            description["Certificate"]["RevokedAt"] = self.revoked_at.timestamp()
            description["Certificate"]["RevocationReason"] = self.revocation_reason
        return description
