"""Distribute Certificate: one target at a time, as the Map state hands them out.

The Map item holds references only (certificate ARN, serial, profile, target id): `resolve`
looks the target up again in the deployed profiles, the profile in ACM's tag, and the bundle
in the stack's own bucket, and refuses anything they do not hold. An `s3` target gets a copy
of the bundle (re-encrypted with the target's KMS key when the profile names one). A `server`
target gets the stack's SSM install document, whose parameters are references only (bucket,
keys, version ids, secret ARN, expected fingerprint, paths, commands), checked against the
document's own patterns before anything is sent; SSM's command status-change event then ends
the task (certrelay.install_callbacks). No key material passes through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from certrelay.bundles import PROFILE_TAG, find_bundle, parse_serial, serial_text
from certrelay.certificates import read_certificate
from certrelay.errors import BundleNotFound, CertrelayError, ProfileMismatch, TargetNotInProfile
from certrelay.ssm_output import STEP_NAME, install_outcome
from certrelay.text import DETAIL_LIMIT

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef
    from mypy_boto3_ssm import SSMClient

    from certrelay.profiles import Profile, S3Target, ServerTarget
    from certrelay.workflow import DistributionItem

PUBLIC_FILES = ("cert", "chain", "fullchain")  # what a bucket target (a partner) needs
KEY_FILES = ("privkey", "manifest")  # only for targets that say include_key: true
# At most half of a target's servers install (and reload) at once: a target is one service's
# pool behind one name, so the other half keeps serving while a reload misbehaves on the first
# (each host rolls itself back). Half means at most two waves, which fit the Send Install Command
# deadline (install_callbacks.INSTALL_DEADLINE_SECONDS) when a typical install takes seconds;
# a host SSM could not start within TimeoutSeconds is reported as failed, never skipped silently.
MAX_CONCURRENCY = "50%"
FINAL_STATUSES = {"Success", "Failed", "Cancelled", "TimedOut", "Undeliverable", "Terminated"}


class TargetInvalid(CertrelayError):
    """A target's settings would not pass the install document's parameter patterns."""


@dataclass(frozen=True)
class InstallSettings:
    document: str
    output_bucket: str | None = None


@dataclass(frozen=True)
class Resolved:
    """One Map item, looked up again: the deployed target, ACM's name for the certificate,
    and the bundle Export Certificate left in the stack's bucket."""

    target_id: str
    target: S3Target | ServerTarget
    name: str
    bundle: dict[str, Any]

    @property
    def spec(self) -> dict[str, Any]:
        return self.target.model_dump(mode="json", exclude_none=True)


def resolve(
    item: DistributionItem,
    *,
    acm: ACMClient,
    s3: Any,
    bucket: str,
    profiles: dict[str, Profile],
) -> Resolved:
    """The target the item names, from the deployed profiles; a typed error for anything else.

    The certificate's profile is ACM's tag (the item's must agree), the target must be in that
    profile with the kind the item claims, the serial must be ACM's current one, and the
    bundle is found in `bucket` (the stack's own) from the certificate id and serial.
    """
    certificate = read_certificate(acm, item.certificate_arn)
    if certificate is None:
        raise ProfileMismatch(f"{item.certificate_arn} is no longer in ACM")
    tagged = certificate.tags.get(PROFILE_TAG, "").strip()
    if tagged != item.profile:
        raise ProfileMismatch(
            f"the item names profile {item.profile!r}; ACM tags the certificate {tagged!r}"
        )
    profile = profiles.get(tagged)
    if profile is None:
        raise ProfileMismatch(f"profile {tagged!r} is not deployed")
    target = dict(profile.target_ids(tagged)).get(item.target.id)
    if target is None:
        raise TargetNotInProfile(f"profile {tagged!r} has no target {item.target.id!r}")
    if target.kind != item.target.kind:
        raise TargetNotInProfile(
            f"target {item.target.id!r} is {target.kind}, not {item.target.kind}"
        )
    current = serial_text(parse_serial(certificate.serial or "0"))
    if item.serial != current:
        raise BundleNotFound(f"serial {item.serial} is not ACM's current serial {current}")
    bundle = find_bundle(s3, bucket, item.certificate_arn, item.serial)
    return Resolved(item.target.id, target, certificate.domain, bundle)


def copy_to_bucket(s3: S3Client, bundle: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """Copy every bundle file to the target bucket/prefix; returns where each landed."""
    prefix = str(target.get("prefix") or "")
    serial = str(bundle["serial"])
    landed: dict[str, str] = {}
    names = PUBLIC_FILES + (KEY_FILES if target.get("include_key") else ())
    for name in names:
        source_key = bundle["keys"][name]
        destination = f"{prefix}{serial}/{source_key.rsplit('/', 1)[-1]}"
        source: CopySourceTypeDef = {"Bucket": bundle["bucket"], "Key": source_key}
        version = (bundle.get("versions") or {}).get(name)
        if version:
            source["VersionId"] = str(version)
        extra: dict[str, Any] = {
            "ServerSideEncryption": "aws:kms",
            "BucketKeyEnabled": True,
            "TaggingDirective": "REPLACE",  # the stack's access tags stay home
        }
        if target.get("kms_key"):
            extra["SSEKMSKeyId"] = str(target["kms_key"])
        s3.copy_object(CopySource=source, Bucket=str(target["bucket"]), Key=destination, **extra)
        landed[name] = f"s3://{target['bucket']}/{destination}"
    return {"status": "DISTRIBUTED", "detail": landed["fullchain"], "objects": landed}


def copy_target(s3: S3Client, resolved: Resolved) -> dict[str, Any]:
    """Copy To Bucket for one resolved s3 target, as the Map item's fixed-shape result."""
    copied = copy_to_bucket(s3, resolved.bundle, resolved.spec)
    return result(resolved.target_id, "s3", str(copied["status"]), str(copied["detail"]))


def install_parameters(bundle: dict[str, Any], target: dict[str, Any], name: str) -> dict[str, str]:
    """The install document's parameters for one server target: references only."""
    import hashlib

    from certrelay.ssm_document import validate_document_parameters

    versions = bundle.get("versions") or {}
    # one work directory per bundle and target, so two targets on one host never collide
    slot = hashlib.sha256(str(target["cert_path"]).encode()).hexdigest()[:12]
    parameters = {
        "WorkDir": f"/var/lib/certrelay/{bundle['serial']}-{slot}",
        "Bucket": str(bundle["bucket"]),
        "CertKey": str(bundle["keys"]["cert"]),
        "ChainKey": str(bundle["keys"]["chain"]),
        "KeyKey": str(bundle["keys"]["privkey"]),
        "CertVersion": str(versions.get("cert") or "null"),
        "ChainVersion": str(versions.get("chain") or "null"),
        "KeyVersion": str(versions.get("privkey") or "null"),
        "SecretArn": str(bundle["secret_arn"]),
        "SecretVersion": str(bundle.get("secret_version") or "null"),
        "ExpectedFingerprint": str(bundle["fingerprint"]),
        "ExpectedName": name,
        "CertPath": str(target["cert_path"]),
        "KeyPath": str(target["key_path"]),
        "ChainPath": str(target["chain_path"]),
        "Reload": str(target["reload"]),
    }
    if target.get("config_test"):
        parameters["ConfigTest"] = str(target["config_test"])
    if target.get("verify_port"):
        parameters["VerifyPort"] = str(target["verify_port"])
    if target.get("verify_server_name"):
        parameters["VerifyServerName"] = str(target["verify_server_name"])
    try:
        validate_document_parameters(parameters)
    except ValueError as error:
        raise TargetInvalid(str(error)) from None
    return parameters


def send_install(
    ssm: SSMClient,
    bundle: dict[str, Any],
    target: dict[str, Any],
    *,
    name: str,
    settings: InstallSettings,
    timeout_seconds: int = 600,
) -> dict[str, Any]:
    """Send the install command to the target's instances (or tag selection)."""
    selection: dict[str, Any]
    if target.get("instances"):
        selection = {"InstanceIds": list(target["instances"])}
    else:
        tags = target.get("tags") or {}
        selection = {"Targets": [{"Key": f"tag:{k}", "Values": [v]} for k, v in tags.items()]}
    parameters = install_parameters(bundle, target, name)
    command = ssm.send_command(
        DocumentName=settings.document,
        Parameters={k: [v] for k, v in parameters.items()},
        TimeoutSeconds=timeout_seconds,
        Comment=f"certrelay install {bundle['serial']}"[:100],
        MaxErrors="100%",  # every server is tried; the report names the ones that failed
        MaxConcurrency=MAX_CONCURRENCY,
        **selection,
    )["Command"]
    return {
        "command_id": command["CommandId"],
        "instances": list(command.get("InstanceIds") or []),
        "status": "SENT",
        "attempt": 0,
    }


def check_install(ssm: SSMClient, command_id: str, instances: list[str]) -> dict[str, Any]:
    """Where one install command stands: done?, and each instance's install step and last line.

    ListCommandInvocations (with Details) gives each instance's steps; the install step's own
    output has the INSTALLED / REFUSED / ROLLED BACK line. Instances named in the profile must
    all report; for a tag selection, the command itself must be finished too (SSM may still
    be dispatching to more instances).
    """
    listed: list[Any] = []
    pages = ssm.get_paginator("list_command_invocations").paginate(
        CommandId=command_id, Details=True
    )
    for page in pages:
        listed.extend(page["CommandInvocations"])
    by_instance = {i["InstanceId"]: i for i in listed}
    report = []
    for instance in instances or list(by_instance):
        invocation = by_instance.get(instance)
        if invocation is None:
            report.append({"instance": instance, "status": "Pending", "last_line": ""})
            continue
        steps = invocation.get("CommandPlugins") or []
        install = next((p for p in steps if p.get("Name") == STEP_NAME), None)
        output = str((install or {}).get("Output") or "")
        status_line, reason = install_outcome(output)  # the agent appends stderr after stdout
        report.append(
            {
                "instance": instance,
                "status": invocation["Status"],
                "last_line": status_line or reason,
                "reason": reason,
            }
        )
    done = bool(report) and all(i["status"] in FINAL_STATUSES for i in report)
    if done and not instances:
        (command,) = ssm.list_commands(CommandId=command_id)["Commands"]
        done = command["Status"] in FINAL_STATUSES
    ok = done and all(i["status"] == "Success" for i in report)
    return {
        "command_id": command_id,
        "done": done,
        "status": "DISTRIBUTED" if ok else ("FAILED" if done else "IN_PROGRESS"),
        "instances": report,
    }


# The report names at most this many failed targets (and the Fail's cause, with reasons, half
# of them); `failed` counts them all. A profile's 100 failed targets with their reasons would
# otherwise take a third of the workflow's payload and most of the Fail's 32,768-character cause.
LISTED_FAILURES = 20


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Report Distribution: which targets got the certificate and which did not."""
    failed = [r for r in results if r.get("status") != "DISTRIBUTED"]
    labels = [target_label(r.get("target")) for r in failed]
    shown = LISTED_FAILURES // 2
    reasons = [
        f"{label} ({str(r.get('detail') or r.get('status'))[:120]})"
        for label, r in zip(labels[:shown], failed, strict=False)
    ]
    more = f" (+{len(failed) - shown} more)" if len(failed) > shown else ""
    return {
        "distributed": len(results) - len(failed),
        "failed": len(failed),
        "failed_targets": labels[:LISTED_FAILURES],
        "complete": bool(results) and not failed,
        "outcome": "distributed" if results and not failed else "distribution-incomplete",
        "cause": "Not every target has the renewed certificate; failed: "
        + "; ".join(reasons)
        + more
        if failed
        else "",
    }


def target_label(target: object) -> str:
    """A target in one line: its id in the profile (older results held the target itself)."""
    if isinstance(target, str):
        return target
    if not isinstance(target, dict):
        return "unknown target"
    if target.get("kind") == "s3":
        return f"s3://{target.get('bucket')}/{target.get('prefix') or ''}"
    if target.get("instances"):
        return f"server {','.join(target['instances'])}:{target.get('cert_path')}"
    tags = ",".join(f"{k}={v}" for k, v in (target.get("tags") or {}).items())
    return f"servers tagged {tags}:{target.get('cert_path')}"


def result(target_id: str, kind: str, status: str, detail: str) -> dict[str, Any]:
    """A Map item's result in its fixed shape (workflow.TargetResult)."""
    return {"target": target_id, "kind": kind, "status": status, "detail": detail[:DETAIL_LIMIT]}


def command_outcome(report: dict[str, Any], *, limit: int = 5) -> tuple[str, str]:
    """(status, one short line) from check_install's report: at most `limit` failed hosts."""
    instances = list(report.get("instances") or [])
    failed = [i for i in instances if i.get("status") != "Success"]
    if report.get("status") == "DISTRIBUTED":
        names = ", ".join(str(i.get("instance")) for i in instances[:limit])
        more = f" (+{len(instances) - limit} more)" if len(instances) > limit else ""
        return "DISTRIBUTED", f"installed and served on {names}{more}"
    shown = "; ".join(
        f"{i.get('instance')} {i.get('status')} {str(i.get('last_line') or '')[:100]}".rstrip()
        for i in failed[:limit]
    )
    more = f" (+{len(failed) - limit} more)" if len(failed) > limit else ""
    return "FAILED", (shown or "no instance answered")[: DETAIL_LIMIT - len(more)] + more
