"""Distribute Certificate, one target: copy to a bucket, send (or cancel) the server install.

The Map item is references only; the target, the certificate's profile and the bundle are
looked up again (deployed profiles, ACM, the stack's bucket). The task token is stored, never
logged or returned.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from certrelay.distribution import copy_to_bucket, resolve, result
from certrelay.errors import TargetNotInProfile
from certrelay.install_callbacks import INSTALL_DEADLINE_SECONDS, CallbackSettings, cancel, start
from certrelay.profiles import Profile, load_profiles_file
from certrelay.windows import next_opening
from certrelay.workflow import InstallRequest, ItemRequest

logger = Logger()


@cache
def _dependencies() -> tuple[CallbackSettings, dict[str, Profile]]:
    settings = CallbackSettings.from_env(os.environ)
    return settings, load_profiles_file(settings.profiles_file)


@cache
def _client(service: str) -> Any:
    return boto3.client(service)  # type: ignore[call-overload]


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == "window":
        opens = next_opening(event["window"], datetime.now(UTC))
        return {"opens_at": opens.strftime("%Y-%m-%dT%H:%M:%SZ") if opens else None}
    settings, profiles = _dependencies()
    try:
        request = (InstallRequest if event.get("action") == "send" else ItemRequest)(**event)
    except ValidationError as error:  # the fields only: an input value may be the token
        fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
        raise TargetNotInProfile(f"not a reference to a profile's target ({fields})") from None
    item, ddb, ssm = request.item, _client("dynamodb"), _client("ssm")
    logger.append_keys(action=request.action, target=item.target.id, execution=request.execution)
    if request.action == "cancel":
        cancelled = cancel(
            ddb, ssm, settings.table, execution=request.execution, target_id=item.target.id
        )
        logger.info("install cancelled", extra={"command_id": cancelled.get("command_id")})
        detail = (
            f"no answer within {INSTALL_DEADLINE_SECONDS // 60} minutes; the command was cancelled"
        )
        return result(item.target.id, item.target.kind, "TIMED_OUT", detail)
    resolved = resolve(
        item, acm=_client("acm"), s3=_client("s3"), bucket=settings.bucket, profiles=profiles
    )
    if request.action == "copy":
        copied = copy_to_bucket(_client("s3"), resolved.bundle, resolved.spec)
        logger.info("bundle copied", extra={"status": copied["status"]})
        return result(item.target.id, "s3", copied["status"], str(copied["detail"]))
    assert isinstance(request, InstallRequest)
    clients = {name: _client(name) for name in ("dynamodb", "ssm", "lambda")}
    token, execution = request.token, request.execution
    sent = start(
        clients, settings, resolved, token=token, execution=execution, now=datetime.now(UTC)
    )
    logger.info("install sent", extra=sent)
    return {"command_id": sent["command_id"], "instances": sent["instances"], "status": "SENT"}
