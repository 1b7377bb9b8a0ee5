"""The export handler against moto: one encrypted bundle per serial, references out, no secrets."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.endpoint
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws
from moto.acm.models import acm_backends
from moto.core.exceptions import JsonRESTError

from certrelay.errors import (
    BundleNotFound,
    ExportCapReached,
    ExportMismatch,
    ExportRefused,
    ProfileMismatch,
    ServiceThrottled,
)
from certrelay.export import ExportSettings, export_certificate, role_arn
from certrelay.export_guard import EXPORTED, EXPORTING, ExportGuard, claim_key, day_key
from certrelay.profiles import load_profiles
from certrelay.workflow import check_result
from functions.export import app
from tests.functional.test_triage import import_certificate

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "certrelay-bundles"
PREFIX = "certrelay/export/"
TABLE = "certrelay-events"
DOMAIN = "api.internal.example.com"
SANS = [DOMAIN, "api2.internal.example.com"]
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:CertrelayStateMachine:run-1"
RESULT_KEYS = {
    "bucket", "prefix", "keys", "versions", "fingerprint", "serial", "not_after",
    "secret_arn", "secret_version", "created",
}  # fmt: skip
NAMES = {"cert", "chain", "fullchain", "privkey", "manifest"}
PROFILES = """
profiles:
  web:
    approval: auto
    targets: [{kind: s3, bucket: partner-bundles}]
  empty:
    owners: [web-team@example.com]
  capped:
    approval: auto
    exports_per_day: 1
    targets: [{kind: s3, bucket: partner-bundles}]
"""


@dataclass(frozen=True)
class FakeContext:
    function_name: str = "certrelay-export"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:certrelay-export"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@dataclass
class Exports:
    """Wraps moto's ACM ExportCertificate: counts calls, keeps answers, may swap the answer."""

    real: Callable[[str, str], tuple[str, str, str]]
    answers: list[tuple[str, str, str]] = field(default_factory=list)
    replace: Callable[[tuple[str, str, str], bytes], tuple[str, str, str]] | None = None

    def __call__(self, certificate_arn: str, passphrase: str) -> tuple[str, str, str]:
        answer = self.real(certificate_arn, passphrase)
        if self.replace is not None:
            answer = self.replace(answer, base64.standard_b64decode(passphrase))
        self.answers.append(answer)
        return answer


@dataclass
class Aws:
    acm: Any
    s3: Any
    secrets: Any
    bundle_key: str
    passphrase_key: str
    arn: str
    exports: Exports
    dynamodb: Any

    def record(self, pk: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    """Moto with a versioned bucket, two CMKs, a private CA and one PRIVATE certificate from it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        bundle_key, passphrase_key = (kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2))
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ca = boto3.client("acm-pca", region_name=REGION).create_certificate_authority(
            CertificateAuthorityConfiguration={
                "KeyAlgorithm": "RSA_2048",
                "SigningAlgorithm": "SHA256WITHRSA",
                "Subject": {"CommonName": "certrelay test CA"},
            },
            CertificateAuthorityType="ROOT",
        )["CertificateAuthorityArn"]
        acm = boto3.client("acm", region_name=REGION)
        arn = acm.request_certificate(
            DomainName=DOMAIN, CertificateAuthorityArn=ca, SubjectAlternativeNames=SANS
        )["CertificateArn"]
        acm.add_tags_to_certificate(
            CertificateArn=arn, Tags=[{"Key": "certrelay:profile", "Value": "web"}]
        )
        (tmp_path / "profiles.yaml").write_text(PROFILES, encoding="utf-8")
        monkeypatch.setenv("PROFILES_FILE", str(tmp_path / "profiles.yaml"))
        backend = acm_backends[ACCOUNT][REGION]
        exports = Exports(backend.export_certificate)
        backend.export_certificate = exports  # type: ignore[method-assign]  # reset on exit
        for name, value in {
            "BUNDLE_BUCKET": BUCKET,
            "BUNDLE_KMS_KEY_ARN": bundle_key,
            "PASSPHRASE_SECRET_PREFIX": PREFIX,
            "PASSPHRASE_KMS_KEY_ARN": passphrase_key,
            "EVENT_TABLE_NAME": TABLE,
        }.items():
            monkeypatch.setenv(name, value)
        app._dependencies.cache_clear()
        secrets = boto3.client("secretsmanager", region_name=REGION)
        yield Aws(acm, s3, secrets, bundle_key, passphrase_key, arn, exports, dynamodb)
        app._dependencies.cache_clear()


def secret_version_stages(aws: Aws, secret_arn: str) -> dict[str, list[str]]:
    """Version id -> stages (moto's dates move with the clock, so they are left out)."""
    versions = aws.secrets.list_secret_version_ids(SecretId=secret_arn)["Versions"]
    return {v["VersionId"]: sorted(v.get("VersionStages", [])) for v in versions}


def export(arn: str, profile: str | None = "web", execution: str = EXECUTION) -> dict[str, Any]:
    """Invoke the handler as "Export Certificate" does."""
    event = {"execution": execution, "decision": {"certificate": {"arn": arn}, "profile": profile}}
    result: dict[str, Any] = app.handler(event, FakeContext())  # type: ignore[arg-type]
    check_result("Export Certificate", result)  # the closed result model: references only
    return result


def body(aws: Aws, key: str) -> bytes:
    data: bytes = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def versions(aws: Aws) -> list[tuple[str, str]]:
    listed = aws.s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    return sorted((v["Key"], v["VersionId"]) for v in listed)


def passphrase_of(aws: Aws, secret_arn: str) -> bytes:
    return str(aws.secrets.get_secret_value(SecretId=secret_arn)["SecretString"]).encode()


def bundle_path(aws: Aws) -> str:
    """`<certificate-id>/<serial>`: ACM's decimal serial (moto) as lowercase hex, whole bytes."""
    serial = (
        f"{int(aws.acm.describe_certificate(CertificateArn=aws.arn)['Certificate']['Serial']):x}"
    )
    return f"{aws.arn.rsplit('/', 1)[1]}/{serial.zfill(len(serial) + len(serial) % 2)}"


def nothing_written(aws: Aws) -> bool:
    return versions(aws) == [] and aws.secrets.list_secrets()["SecretList"] == []


def test_a_private_certificate_becomes_one_sse_kms_bundle_of_five_objects(aws: Aws) -> None:
    # GIVEN a PRIVATE certificate issued by the stack's private CA
    # WHEN it is exported
    result = export(aws.arn)
    # THEN the five objects sit under certificates/<id>/<serial>/, each encrypted with the CMK
    prefix = f"certificates/{bundle_path(aws)}/"
    assert set(result) == RESULT_KEYS
    assert (result["bucket"], result["prefix"], result["created"]) == (BUCKET, prefix, True)
    assert set(result["keys"]) == set(result["versions"]) == NAMES
    for name, key in result["keys"].items():
        assert key == prefix + ("manifest.json" if name == "manifest" else f"{name}.pem")
        head = aws.s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == aws.bundle_key
        assert head["BucketKeyEnabled"] is True
        assert head["VersionId"] == result["versions"][name]
    assert len(versions(aws)) == 5
    # AND the fingerprint is the certificate's own, the serial ACM's
    cert = x509.load_pem_x509_certificate(body(aws, result["keys"]["cert"]))
    assert (
        result["fingerprint"]
        == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    )
    assert result["serial"] == bundle_path(aws).rsplit("/", 1)[1]
    assert int(result["serial"], 16) == cert.serial_number


def test_the_private_key_stays_encrypted_and_opens_only_with_the_secrets_passphrase(
    aws: Aws,
) -> None:
    # GIVEN an exported certificate
    result = export(aws.arn)
    # WHEN the bundle's key is read
    privkey = body(aws, result["keys"]["privkey"])
    # THEN it is exactly what ACM exported: an encrypted PKCS#8 key
    [(_, chain_pem, exported_key)] = aws.exports.answers
    assert privkey == exported_key.encode()
    assert privkey.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(privkey, password=None)
    with pytest.raises(ValueError, match=r"(?i)incorrect password|decrypt"):
        serialization.load_pem_private_key(privkey, password=b"not-the-passphrase-0123456789")
    # AND the secret's passphrase opens it, and it is the certificate's key
    key = serialization.load_pem_private_key(
        privkey, password=passphrase_of(aws, result["secret_arn"])
    )
    cert = x509.load_pem_x509_certificate(body(aws, result["keys"]["cert"]))
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
    # AND fullchain is the certificate followed by the chain
    assert body(aws, result["keys"]["fullchain"]) == body(aws, result["keys"]["cert"]) + body(
        aws, result["keys"]["chain"]
    )
    assert body(aws, result["keys"]["chain"]).strip() == chain_pem.strip().encode()
    # AND the secret is named after certificate and serial, under the passphrase CMK
    secret = aws.secrets.describe_secret(SecretId=result["secret_arn"])
    assert secret["Name"] == f"{PREFIX}{bundle_path(aws)}"
    assert secret["KmsKeyId"] == aws.passphrase_key


def test_the_manifest_describes_the_bundle_and_holds_no_secret(aws: Aws) -> None:
    # GIVEN an exported certificate
    result = export(aws.arn)
    # WHEN its manifest is read
    manifest = json.loads(body(aws, result["keys"]["manifest"]))
    # THEN it names the certificate, its facts, each file with its digest, and the secret
    described = aws.acm.describe_certificate(CertificateArn=aws.arn)["Certificate"]
    assert manifest["certificate_arn"] == aws.arn
    assert manifest["serial"] == result["serial"]
    assert manifest["fingerprint_sha256"] == result["fingerprint"]
    assert manifest["not_after"] == described["NotAfter"].astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert manifest["not_after"] == result["not_after"]
    assert manifest["not_before"] == described["NotBefore"].astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert sorted(manifest["sans"]) == sorted(SANS)
    assert manifest["secret_arn"] == result["secret_arn"]
    assert (
        manifest["secret_version_id"]
        in aws.secrets.describe_secret(SecretId=result["secret_arn"])["VersionIdsToStages"]
    )
    created = datetime.strptime(manifest["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=1)
    assert set(manifest["files"]) == {"cert", "chain", "fullchain", "privkey"}
    for name, entry in manifest["files"].items():
        assert entry["key"] == result["keys"][name]
        assert entry["version_id"] == result["versions"][name]
        assert entry["sha256"] == hashlib.sha256(body(aws, entry["key"])).hexdigest()
    text = json.dumps(manifest)
    assert "PRIVATE KEY" not in text
    assert passphrase_of(aws, result["secret_arn"]).decode() not in text


def test_the_result_holds_references_only(aws: Aws) -> None:
    # GIVEN / WHEN a certificate is exported
    result = export(aws.arn)
    # THEN the state data gets keys, versions and facts: no PEM, no passphrase
    text = json.dumps(result)
    assert "-----BEGIN" not in text
    assert passphrase_of(aws, result["secret_arn"]).decode() not in text
    assert all(
        isinstance(value, (str, bool))
        for key, value in result.items()
        if key not in {"keys", "versions"}
    )


def test_the_same_export_twice_makes_one_bundle_and_calls_acm_once(aws: Aws) -> None:
    # GIVEN a certificate exported once
    first = export(aws.arn)
    objects = versions(aws)
    secret_versions = secret_version_stages(aws, first["secret_arn"])
    # WHEN the same export runs again (a retry, a redelivered event)
    second = export(aws.arn)
    # THEN the manifest answers: same references, created false, nothing exported or written
    assert second == {**first, "created": False}
    assert len(aws.exports.answers) == 1
    assert versions(aws) == objects
    assert secret_version_stages(aws, first["secret_arn"]) == secret_versions


def test_a_passphrase_left_by_a_crashed_run_is_replaced_by_a_new_value(aws: Aws) -> None:
    # GIVEN a run that stored a passphrase and died before the bundle was written
    name = f"{PREFIX}{bundle_path(aws)}"
    stale = aws.secrets.create_secret(Name=name, SecretString="stale-passphrase-0123456789abcdef")
    # WHEN the export runs again
    result = export(aws.arn)
    # THEN the same secret holds a new value, and that value opens the bundle's key
    assert result["secret_arn"] == stale["ARN"]
    passphrase = passphrase_of(aws, stale["ARN"])
    assert passphrase != b"stale-passphrase-0123456789abcdef"
    serialization.load_pem_private_key(body(aws, result["keys"]["privkey"]), password=passphrase)


def test_a_concurrent_export_that_finished_first_keeps_its_bundle(aws: Aws) -> None:
    # GIVEN a complete bundle whose manifest is hidden while a second run exports
    first = export(aws.arn)
    manifest_key = first["keys"]["manifest"]
    aws.s3.delete_object(Bucket=BUCKET, Key=manifest_key)

    def finish_first_run(answer: tuple[str, str, str], _: bytes) -> tuple[str, str, str]:
        source = {"Bucket": BUCKET, "Key": manifest_key, "VersionId": first["versions"]["manifest"]}
        aws.s3.copy_object(Bucket=BUCKET, Key=manifest_key, CopySource=source)
        return answer

    aws.exports.replace = finish_first_run
    # (an operator deleted the serial's export record, so the cost guard lets the second run in)
    serial = bundle_path(aws).rsplit("/", 1)[1]
    aws.dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": claim_key(aws.arn, serial)}})
    # WHEN the second run reaches its manifest write
    second = export(aws.arn, execution=EXECUTION + "-2")
    # THEN it does not overwrite: the first run's manifest (and file versions) stand
    assert second["created"] is False
    assert {k: v for k, v in second["versions"].items() if k != "manifest"} == {
        k: v for k, v in first["versions"].items() if k != "manifest"
    }
    manifest = json.loads(body(aws, manifest_key))
    assert manifest["files"]["privkey"]["version_id"] == first["versions"]["privkey"]


def test_an_imported_certificate_is_refused_and_nothing_is_written(aws: Aws) -> None:
    # GIVEN an IMPORTED certificate (ACM does not export those)
    imported = import_certificate(aws.acm, days_left=30, tags={})
    # WHEN its export is attempted
    with pytest.raises(ExportRefused, match="IMPORTED"):
        export(imported)
    # THEN ACM was not asked and nothing was stored
    assert aws.exports.answers == []
    assert nothing_written(aws)


@pytest.mark.parametrize("status", ["REVOKED", "EXPIRED", "PENDING_VALIDATION"])
def test_a_certificate_that_is_not_issued_is_refused(aws: Aws, status: str) -> None:
    # GIVEN ACM reports the certificate in another state than ISSUED
    acm_backends[ACCOUNT][REGION].get_certificate(aws.arn).status = status
    # WHEN / THEN the export is refused, naming the state, and nothing is written
    with pytest.raises(ExportRefused, match=status):
        export(aws.arn)
    assert nothing_written(aws)


def test_a_certificate_past_its_not_after_is_refused(aws: Aws) -> None:
    # GIVEN a clock past the certificate's NotAfter (ACM may not have marked it EXPIRED yet)
    not_after = aws.acm.describe_certificate(CertificateArn=aws.arn)["Certificate"]["NotAfter"]
    # WHEN / THEN the export is refused
    with pytest.raises(ExportRefused, match="expired"):
        export_certificate(
            {"decision": {"certificate": {"arn": aws.arn}}},
            acm_client=aws.acm,
            s3_client=aws.s3,
            secrets_client=aws.secrets,
            settings=ExportSettings(BUCKET, aws.bundle_key, PREFIX),
            profiles=load_profiles(PROFILES),
            guard=ExportGuard(aws.dynamodb, TABLE),
            now=not_after + timedelta(seconds=1),
        )
    assert nothing_written(aws)


def test_a_key_that_is_not_the_certificates_is_a_mismatch_and_nothing_is_written(
    aws: Aws,
) -> None:
    # GIVEN ACM answers ExportCertificate with some other key (encrypted with our passphrase)
    def other_key(answer: tuple[str, str, str], passphrase: bytes) -> tuple[str, str, str]:
        stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        return answer[0], answer[1], stranger.decode()

    aws.exports.replace = other_key
    # WHEN / THEN the export is a mismatch, and neither bundle nor secret exists
    with pytest.raises(ExportMismatch, match="does not belong to the certificate"):
        export(aws.arn)
    assert nothing_written(aws)


def test_acm_throttling_is_service_throttled_for_the_retry(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN ACM throttles ExportCertificate (botocore's own retries ask for back-offs of about a
    # second in all: noted, not slept)
    backoffs: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=backoffs.append))

    def throttle(answer: tuple[str, str, str], _: bytes) -> tuple[str, str, str]:
        raise JsonRESTError("ThrottlingException", "Rate exceeded")

    aws.exports.replace = throttle
    # WHEN / THEN the task fails with the retryable name, and nothing is written
    with pytest.raises(ServiceThrottled, match="ExportCertificate"):
        export(aws.arn)
    assert nothing_written(aws)


def test_log_lines_name_the_bundle_and_never_hold_key_material(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the handler's logs are captured
    caplog.set_level(logging.INFO)
    # WHEN a certificate is exported, then exported again
    first = export(aws.arn)
    export(aws.arn)
    # THEN one line each, with references, and no key, certificate or passphrase
    messages = [r.getMessage() for r in caplog.records if r.name != "botocore.credentials"]
    assert "certificate exported" in messages
    assert "certificate already exported" in messages
    logs = json.dumps([vars(r) for r in caplog.records], default=str)
    assert first["fingerprint"] in logs
    assert "-----BEGIN" not in logs
    assert passphrase_of(aws, first["secret_arn"]).decode() not in logs
    [(_, _, exported_key)] = aws.exports.answers
    assert exported_key.splitlines()[1] not in logs


def test_the_result_pins_the_passphrase_version_that_opens_the_key(aws: Aws) -> None:
    # GIVEN an export WHEN it returns THEN it names the secret version the hosts must fetch
    result = export(aws.arn)
    stages = aws.secrets.describe_secret(SecretId=result["secret_arn"])["VersionIdsToStages"]

    assert result["secret_version"] in stages


def test_bundle_and_passphrase_carry_the_profile_tag_hosts_are_matched_on(aws: Aws) -> None:
    # GIVEN an export for profile "web" WHEN it is written THEN objects and secret say so
    result = export(aws.arn)
    secret_tags = aws.secrets.describe_secret(SecretId=result["secret_arn"])["Tags"]

    assert {"Key": "certrelay:profile", "Value": "web"} in secret_tags
    for key in result["keys"].values():
        tags = aws.s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
        assert tags == [{"Key": "certrelay:profile", "Value": "web"}], key


@pytest.mark.parametrize("claimed", ["other", None])
def test_a_payload_naming_another_profile_than_acms_tag_is_refused(
    aws: Aws, claimed: str | None
) -> None:
    # GIVEN ACM tags the certificate certrelay:profile=web
    # WHEN the payload claims another profile (or none) THEN ProfileMismatch, nothing exported
    with pytest.raises(ProfileMismatch, match="web"):
        export(aws.arn, profile=claimed)
    assert aws.exports.answers == []
    assert nothing_written(aws)


@pytest.mark.parametrize("tag", ["empty", "not-deployed"])
def test_a_profile_that_is_not_deployed_or_has_no_targets_is_refused(aws: Aws, tag: str) -> None:
    # GIVEN the certificate's tag names a profile with no targets, or one that is not deployed
    aws.acm.add_tags_to_certificate(
        CertificateArn=aws.arn, Tags=[{"Key": "certrelay:profile", "Value": tag}]
    )
    # WHEN the payload agrees with the tag THEN still refused: there is nowhere to distribute to
    with pytest.raises(ProfileMismatch, match="no targets"):
        export(aws.arn, profile=tag)
    assert aws.exports.answers == []
    assert nothing_written(aws)


def passphrase_policy_of(aws: Aws, secret_arn: str) -> dict[str, Any]:
    answer = aws.secrets.get_resource_policy(SecretId=secret_arn)
    policy: dict[str, Any] = json.loads(answer["ResourcePolicy"])
    return policy


def test_only_the_profiles_hosts_and_the_export_role_may_read_a_new_passphrase(aws: Aws) -> None:
    """KEY-07: the passphrase's own policy denies GetSecretValue to every principal not tagged
    with its profile, except the export role (moto's caller here), whatever their IAM allows."""
    # GIVEN an export for profile "web" WHEN it stores the passphrase
    result = export(aws.arn)
    # THEN the secret carries exactly that Deny
    (statement,) = passphrase_policy_of(aws, result["secret_arn"])["Statement"]
    caller = boto3.client("sts", region_name=REGION).get_caller_identity()["Arn"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Condition"] == {
        "StringNotEquals": {"aws:PrincipalTag/certrelay:profile": "web"},
        "ArnNotEquals": {"aws:PrincipalArn": caller},
    }


def test_a_hubs_passphrase_also_admits_the_organisations_hosts_of_its_profile(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the export function of a hub of organisation o-exampleorgid1 (template env)
    for name, value in {
        "ORGANIZATION_MODE": "hub",
        "ORGANIZATION_ID": "o-exampleorgid1",
        "MEMBER_EXTERNAL_ID": "external-id-0123456789",
        "STACK_ACCOUNT_ID": ACCOUNT,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    app._dependencies.cache_clear()
    # WHEN it stores a passphrase of profile "web"
    result = export(aws.arn)
    # THEN the profile's Deny stays, and the organisation's other accounts' hosts tagged "web"
    # are allowed (a secret is readable across accounts only when its policy says so)
    deny, allow = passphrase_policy_of(aws, result["secret_arn"])["Statement"]
    assert deny["Effect"] == "Deny"
    assert allow["Effect"] == "Allow"
    assert allow["Action"] == "secretsmanager:GetSecretValue"
    assert allow["Condition"] == {
        "StringEquals": {
            "aws:PrincipalOrgID": "o-exampleorgid1",
            "aws:PrincipalTag/certrelay:profile": "web",
        },
        "StringNotEquals": {"aws:PrincipalAccount": ACCOUNT},
    }


def test_a_passphrase_left_by_a_crashed_run_gets_the_deny_too(aws: Aws) -> None:
    # GIVEN a secret a crashed run created before it could attach its policy
    name = f"{PREFIX}{bundle_path(aws)}"
    stale = aws.secrets.create_secret(Name=name, SecretString="stale-passphrase-0123456789abcdef")
    # WHEN the export runs again THEN the secret has the profile's Deny
    export(aws.arn)
    (statement,) = passphrase_policy_of(aws, stale["ARN"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"]["StringNotEquals"] == {
        "aws:PrincipalTag/certrelay:profile": "web"
    }


@pytest.mark.parametrize(
    ("caller", "principal"),
    [
        (
            "arn:aws:sts::123456789012:assumed-role/stack-ExportFunctionRole-AB12/fn-session",
            "arn:aws:iam::123456789012:role/stack-ExportFunctionRole-AB12",
        ),
        (
            "arn:aws-us-gov:sts::123456789012:assumed-role/Role/s",
            "arn:aws-us-gov:iam::123456789012:role/Role",
        ),
        ("arn:aws:iam::123456789012:user/moto", "arn:aws:iam::123456789012:user/moto"),
    ],
)
def test_the_export_roles_principal_arn_is_its_role_not_its_session(
    caller: str, principal: str
) -> None:
    # GIVEN the STS caller ARN of a Lambda WHEN it is turned into aws:PrincipalArn THEN it is
    # the role's ARN (what the policy condition compares)
    assert role_arn(caller) == principal


# --- exportable public certificates and the export cost guard ---------------------------------


def public_certificate(aws: Aws, *, exportable: bool, profile: str = "web") -> str:
    """An AMAZON_ISSUED certificate, with ACM's Options.Export as asked, tagged for `profile`.

    moto issues it at once only after MOTO_ACM_VALIDATION_WAIT; its status is set ISSUED here
    (moto would also export it while PENDING_VALIDATION; certrelay refuses that itself)."""
    arn = aws.acm.request_certificate(
        DomainName="www.example.com",
        Options={"Export": "ENABLED" if exportable else "DISABLED"},
    )["CertificateArn"]
    aws.acm.add_tags_to_certificate(
        CertificateArn=arn, Tags=[{"Key": "certrelay:profile", "Value": profile}]
    )
    acm_backends[ACCOUNT][REGION]._certificates[arn].status = "ISSUED"
    return arn


def serial_of(aws: Aws, arn: str) -> str:
    serial = f"{int(aws.acm.describe_certificate(CertificateArn=arn)['Certificate']['Serial']):x}"
    return serial.zfill(len(serial) + len(serial) % 2)


def test_an_exportable_public_certificate_is_exported_like_a_private_one(aws: Aws) -> None:
    # GIVEN a public certificate requested with Options.Export ENABLED, tagged for profile web
    arn = public_certificate(aws, exportable=True)
    # WHEN Export Certificate runs
    result = export(arn)
    # THEN one bundle is written, its key still encrypted, and the serial's claim says EXPORTED
    assert result["created"] is True
    assert len(aws.exports.answers) == 1
    assert b"ENCRYPTED PRIVATE KEY" in body(aws, result["keys"]["privkey"])
    claim = aws.record(claim_key(arn, result["serial"]))
    assert claim is not None
    assert (claim["status"], claim["execution"]) == (EXPORTED, EXECUTION)
    assert claim["fingerprint_sha256"] == result["fingerprint"]


def test_a_public_certificate_that_is_not_exportable_is_refused_without_asking_acm(
    aws: Aws,
) -> None:
    arn = public_certificate(aws, exportable=False)
    with pytest.raises(ExportRefused, match="AMAZON_ISSUED"):
        export(arn)
    assert aws.exports.answers == []
    assert nothing_written(aws)
    assert aws.record(claim_key(arn, serial_of(aws, arn))) is None


def test_a_second_run_of_the_same_serial_reuses_the_bundle_and_never_exports_again(
    aws: Aws,
) -> None:
    # GIVEN a public certificate exported by one run
    arn = public_certificate(aws, exportable=True)
    first = export(arn)
    # WHEN another run (a second Available event for the same serial) exports it
    second = export(arn, execution=EXECUTION + "-2")
    # THEN the bundle in the bucket is its answer: ACM was asked once, the day counted once
    assert second == {**first, "created": False}
    assert len(aws.exports.answers) == 1
    day = aws.record(day_key("web", datetime.now(UTC)))
    assert day is not None
    assert day["exports"] == "1"


def test_a_serial_exported_before_whose_bundle_is_gone_is_bundle_not_found(aws: Aws) -> None:
    # GIVEN a serial exported by one run, whose manifest has since gone from the bucket
    arn = public_certificate(aws, exportable=True)
    first = export(arn)
    aws.s3.delete_object(Bucket=BUCKET, Key=first["keys"]["manifest"])
    # WHEN another run exports it, THEN it is refused by name and ACM is not asked again
    with pytest.raises(BundleNotFound, match="exports a serial once"):
        export(arn, execution=EXECUTION + "-2")
    assert len(aws.exports.answers) == 1


def test_a_serial_another_run_is_exporting_right_now_makes_this_run_retry(aws: Aws) -> None:
    # GIVEN another run claimed the serial a moment ago and has not written its bundle yet
    arn = public_certificate(aws, exportable=True)
    claim = {
        "pk": {"S": claim_key(arn, serial_of(aws, arn))},
        "status": {"S": EXPORTING},
        "execution": {"S": EXECUTION + "-other"},
        "claimed_at": {"S": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    aws.dynamodb.put_item(TableName=TABLE, Item=claim)
    # WHEN this run exports, THEN it is told to retry (ServiceThrottled) and exports nothing
    with pytest.raises(ServiceThrottled, match="being exported"):
        export(arn)
    assert aws.exports.answers == []
    # AND a claim left long ago by a run that died is not taken over: BundleNotFound
    claim["claimed_at"] = {"S": "2020-01-01T00:00:00Z"}
    aws.dynamodb.put_item(TableName=TABLE, Item=claim)
    with pytest.raises(BundleNotFound, match="never wrote its bundle"):
        export(arn)
    assert aws.exports.answers == []


def test_the_daily_cap_stops_the_export_and_counts_the_metric(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "certrelay")  # as the template's Globals set it
    # GIVEN profile capped (exports_per_day: 1) whose one export of the day is done
    first, second = (public_certificate(aws, exportable=True, profile="capped") for _ in "12")
    export(first, profile="capped")
    capsys.readouterr()
    # WHEN a second certificate of the profile is exported the same UTC day
    with pytest.raises(ExportCapReached, match="cap of 1 exports"):
        export(second, profile="capped", execution=EXECUTION + "-2")
    # THEN ACM was not asked, nothing of it was written, its claim is released for another day
    assert len(aws.exports.answers) == 1
    assert aws.record(claim_key(second, serial_of(aws, second))) is None
    assert not aws.s3.list_objects_v2(
        Bucket=BUCKET, Prefix=f"certificates/{second.rsplit('/', 1)[1]}/"
    ).get("Contents")
    day = aws.record(day_key("capped", datetime.now(UTC)))
    assert day is not None
    assert day["exports"] == "1"
    assert int(day["expires_at"]) > datetime.now(UTC).timestamp()
    # AND the ExportCapReached metric (the alarm's) was emitted with the service dimension only
    (emf,) = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if "ExportCapReached" in line
    ]
    (metric,) = emf["_aws"]["CloudWatchMetrics"]
    assert metric["Namespace"] == "certrelay"
    assert metric["Dimensions"] == [["service"]]
    assert (metric["Metrics"][0]["Name"], emf["service"]) == ("ExportCapReached", "certrelay")


def test_a_failed_export_call_releases_its_claim_so_a_retry_exports(aws: Aws) -> None:
    # GIVEN ACM's ExportCertificate failing once
    arn = public_certificate(aws, exportable=True)

    def fail(answer: tuple[str, str, str], _: bytes) -> tuple[str, str, str]:
        raise JsonRESTError("InternalFailure", "ACM fell over")

    aws.exports.replace = fail
    with pytest.raises(ServiceThrottled):
        export(arn)
    assert aws.record(claim_key(arn, serial_of(aws, arn))) is None
    # WHEN the task is retried, THEN it exports
    aws.exports.replace = None
    assert export(arn)["created"] is True
