"""The export's bundles in the stack's bucket: where one lives, how its manifest reads.

Export Certificate writes a bundle (certrelay.export); Distribute Certificate finds it again for
each target (certrelay.distribution). What both need lives here, without export's cryptography,
so the distribute function imports only what it runs on every call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from certrelay.arns import CERTIFICATE_ARN
from certrelay.certificates import TRANSIENT_ERRORS
from certrelay.errors import BundleNotFound, ExportMismatch, ServiceThrottled

BUNDLE_ROOT = "certificates"
MANIFEST = "manifest.json"
# Result name -> object name under the bundle prefix; manifest.json is written after these.
FILES = {name: f"{name}.pem" for name in ("cert", "chain", "fullchain", "privkey")}
_S3_TRANSIENT = {"SlowDown", "InternalError", "RequestTimeout", "ConditionalRequestConflict"}
_TRANSIENT = TRANSIENT_ERRORS | _S3_TRANSIENT
_NETWORK_ERRORS = (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)
_MANIFEST_KEYS = {"files", "fingerprint_sha256", "serial", "not_after", "secret_arn"}


def parse_serial(text: str) -> int:
    """ACM's Serial as a number: colon hex (`0a:1b:…`, real ACM), or decimal (moto).

    Digits alone read as decimal; real serials carry 64+ random bits, so ACM's hex has colons.
    """
    value = text.strip().lower()
    try:
        if ":" in value or not value.isdigit():
            return int(value.replace(":", ""), 16)
        return int(value, 10)
    except ValueError:
        raise ExportMismatch(f"ACM's serial {text!r} is neither colon hex nor decimal") from None


def serial_text(serial: int) -> str:
    """The one spelling of a serial in keys, names and results: lowercase hex, whole bytes."""
    digits = f"{serial:x}"
    return digits.zfill(len(digits) + len(digits) % 2)


PROFILE_TAG = "certrelay:profile"  # servers may read only their own profile's bundles (ABAC)


def bundle_prefix(certificate_id: str, serial: str) -> str:
    """Where the bundle of one certificate and serial lives in the stack's bucket."""
    return f"{BUNDLE_ROOT}/{certificate_id}/{serial}/"


def find_bundle(s3_client: Any, bucket: str, certificate_arn: str, serial: str) -> dict[str, Any]:
    """The complete bundle of `certificate_arn` at `serial` in the stack's bucket, as Export
    Certificate returned it; BundleNotFound when there is none (or the manifest disagrees)."""
    match = CERTIFICATE_ARN.fullmatch(certificate_arn)
    if match is None or not re.fullmatch(r"[0-9a-f]{2,128}", serial):
        raise BundleNotFound("the item names no ACM certificate ARN and hex serial")
    prefix = bundle_prefix(match["id"], serial)
    found = read_manifest(s3_client, bucket, prefix + MANIFEST)
    if found is None:
        raise BundleNotFound(f"no bundle of serial {serial} for {certificate_arn}")
    manifest, _version = found
    if manifest.get("certificate_arn") != certificate_arn or manifest.get("serial") != serial:
        raise BundleNotFound(f"the manifest under {prefix} is not of {certificate_arn} {serial}")
    return bundle_result(found, bucket, prefix, created=False)


def read_manifest(
    s3_client: Any, bucket: str, key: str
) -> tuple[dict[str, Any], str | None] | None:
    """The manifest and its version when the bundle is complete; None when there is none."""
    with transient("S3"):
        try:
            response = s3_client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error_code(error) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        body = response["Body"].read()
    try:
        manifest = json.loads(body)
    except ValueError:
        manifest = None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not (
        isinstance(files, dict) and set(manifest) >= _MANIFEST_KEYS and set(files) >= set(FILES)
    ):
        raise ExportMismatch(f"s3://{bucket}/{key} is not a complete certrelay manifest")
    return manifest, (str(response["VersionId"]) if response.get("VersionId") else None)


def bundle_result(
    found: tuple[dict[str, Any], str | None], bucket: str, prefix: str, *, created: bool
) -> dict[str, Any]:
    """The task's output: where the bundle is, and which secret opens it; no PEM, no passphrase."""
    manifest, version = found
    files = manifest["files"]
    return {
        "bucket": bucket,
        "prefix": prefix,
        "keys": {**{name: files[name]["key"] for name in FILES}, "manifest": prefix + MANIFEST},
        "versions": {**{name: files[name]["version_id"] for name in FILES}, "manifest": version},
        "fingerprint": manifest["fingerprint_sha256"],
        "serial": manifest["serial"],
        "not_after": manifest["not_after"],
        "secret_arn": manifest["secret_arn"],
        "secret_version": manifest.get("secret_version_id"),  # the passphrase of this privkey.pem
        "created": created,
    }


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def transient(service: str) -> Iterator[None]:
    """Throttling, 5xx and lost connections become ServiceThrottled; the rest propagate."""
    try:
        yield
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if error_code(error) in _TRANSIENT or status >= 500:
            raise ServiceThrottled(
                f"{service} {error.operation_name} failed transiently ({error_code(error)})"
            ) from error
        raise
    except _NETWORK_ERRORS as error:
        raise ServiceThrottled(f"{service} unreachable ({type(error).__name__})") from error
