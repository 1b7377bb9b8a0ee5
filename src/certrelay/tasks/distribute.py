"""Find Window, and the Distribute Certificate Map's item states: Copy To Bucket, Send Install
Command, Cancel Install.

A Map item is references only; the target, the certificate's profile and the bundle are looked
up again (deployed profiles, ACM, the stack's bucket). The task token is stored, never logged
or returned. A hub reads a member's certificate through the member's read role and sends, or
cancels, the member's install document through its install role, in the certificate's Region.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

# Send Install Command checks its parameters against the install document's patterns on every
# call (certrelay.distribution.install_parameters imports the module there, so that
# install_callback, which imports distribution too, does not load it): loaded here, at init.
import certrelay.ssm_document  # noqa: F401
from certrelay.accounts import RoleKind, Sessions, clients_for, sessions_from_env
from certrelay.arns import CERTIFICATE_ARN
from certrelay.distribution import Resolved, copy_target, resolve
from certrelay.install_callbacks import CallbackSettings, cancel, start, timed_out
from certrelay.profiles import Profile, S3Target, ServerTarget, load_profiles_file
from certrelay.text import iso_z
from certrelay.windows import next_opening
from certrelay.workflow import (
    DistributionItem,
    InstallRequest,
    ItemRequest,
    build_requests,
    parse_request,
)


@dataclass(frozen=True)
class Distributing:
    """What the distribute function acts with in one invocation."""

    settings: CallbackSettings
    profiles: dict[str, Profile]
    sessions: Sessions | None  # a hub's, for its members' certificates; None in single mode
    client: Callable[[str], Any]  # boto3 client by service name, kept per container
    log: Logger
    now: datetime

    def at(self, certificate_arn: str, role: RoleKind) -> Callable[[str], Any]:
        """Clients where the certificate is: this function's own at home, else the member's."""
        return clients_for(certificate_arn, role, sessions=self.sessions, own=self.client)

    def origin(self, certificate_arn: str) -> dict[str, str] | None:
        """A member certificate's account and Region; None at home (and in single mode)."""
        parts = CERTIFICATE_ARN.fullmatch(certificate_arn)
        if parts is None or self.at(certificate_arn, "install") is self.client:
            return None
        return {"account": parts["account"], "region": parts["region"]}

    def install_settings(self, certificate_arn: str) -> CallbackSettings:
        """The stack's install document at home; a member's own (member.yaml) elsewhere."""
        if self.sessions is None or self.origin(certificate_arn) is None:
            return self.settings
        prefix = self.sessions.organization.role_prefix
        return replace(self.settings, document=f"{prefix}-install-certificate")


Setup = tuple[CallbackSettings, dict[str, Profile], Sessions | None]
SERVICES = ("acm", "dynamodb", "lambda", "s3", "ssm")  # every client the states use


def setup(environ: Mapping[str, str]) -> Setup:
    """Read once per container: the install settings, the deployed profiles, a hub's sessions."""
    settings = CallbackSettings.from_env(environ)
    build_requests()  # the request models every call parses
    for target in (S3Target, ServerTarget):  # a copy or an install dumps its target
        target.model_rebuild()
    return settings, load_profiles_file(settings.profiles_file), sessions_from_env(environ)


def find_window(event: dict[str, Any], run: Distributing) -> dict[str, Any]:
    """Find Window: None while the profile's maintenance window is open, else when it opens."""
    opens = next_opening(event["window"], run.now)
    answer = {"opens_at": iso_z(opens) if opens else None}
    run.log.info("window found", extra=answer)
    return answer


def copy_to_bucket(event: dict[str, Any], run: Distributing) -> dict[str, Any]:
    """Copy To Bucket: the bundle copied to an s3 target of the certificate's profile."""
    request = parse_request(event, ItemRequest, "s3")
    _log_keys(run.log, request.item, request.execution)
    copied = copy_target(run.client("s3"), _resolve(request.item, run))
    run.log.info("bundle copied", extra={"status": copied["status"]})
    return copied


def send_install_command(event: dict[str, Any], run: Distributing) -> dict[str, Any]:
    """Send Install Command: SSM told to install on a server target; the token kept for SSM's
    answer (certrelay.install_callbacks)."""
    request = parse_request(event, InstallRequest, "server")
    _log_keys(run.log, request.item, request.execution)
    resolved = _resolve(request.item, run)
    clients = {name: run.client(name) for name in ("dynamodb", "lambda")}
    clients["ssm"] = run.at(request.item.certificate_arn, "install")("ssm")
    sent = start(
        clients,
        run.install_settings(request.item.certificate_arn),
        resolved,
        token=request.token,
        execution=request.execution,
        now=run.now,
        origin=run.origin(request.item.certificate_arn),
    )
    run.log.info("install sent", extra=sent)
    return {"command_id": sent["command_id"], "instances": sent["instances"], "status": "SENT"}


def cancel_install(event: dict[str, Any], run: Distributing) -> dict[str, Any]:
    """Cancel Install: Send Install Command's deadline passed; its command is cancelled."""
    request = parse_request(event, ItemRequest, None)
    target = request.item.target
    _log_keys(run.log, request.item, request.execution)
    cancelled = cancel(
        run.client("dynamodb"),
        run.at(request.item.certificate_arn, "install")("ssm"),
        run.settings.table,
        execution=request.execution,
        target_id=target.id,
    )
    run.log.info("install cancelled", extra={"command_id": cancelled.get("command_id")})
    return timed_out(target.id, target.kind)


def _resolve(item: DistributionItem, run: Distributing) -> Resolved:
    s3, bucket, acm = run.client("s3"), run.settings.bucket, run.at(item.certificate_arn, "read")
    return resolve(item, acm=acm("acm"), s3=s3, bucket=bucket, profiles=run.profiles)


def _log_keys(log: Logger, item: DistributionItem, execution: str) -> None:
    log.append_keys(target=item.target.id, execution=execution)
