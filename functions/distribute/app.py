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

from certrelay.distribution import copy_target, resolve
from certrelay.install_callbacks import CallbackSettings, cancel, start, timed_out
from certrelay.profiles import Profile, load_profiles_file
from certrelay.windows import next_opening
from certrelay.workflow import InstallRequest, parse_request

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
    request = parse_request(event)
    item, execution = request.item, request.execution
    logger.append_keys(action=request.action, target=item.target.id, execution=execution)
    if request.action == "cancel":
        ddb, ssm = _client("dynamodb"), _client("ssm")
        cancelled = cancel(ddb, ssm, settings.table, execution=execution, target_id=item.target.id)
        logger.info("install cancelled", extra={"command_id": cancelled.get("command_id")})
        return timed_out(item.target.id, item.target.kind)
    s3 = _client("s3")
    resolved = resolve(item, acm=_client("acm"), s3=s3, bucket=settings.bucket, profiles=profiles)
    if not isinstance(request, InstallRequest):
        copied = copy_target(s3, resolved)
        logger.info("bundle copied", extra={"status": copied["status"]})
        return copied
    clients = {name: _client(name) for name in ("dynamodb", "ssm", "lambda")}
    now, token = datetime.now(UTC), request.token
    sent = start(clients, settings, resolved, token=token, execution=execution, now=now)
    logger.info("install sent", extra=sent)
    return {"command_id": sent["command_id"], "instances": sent["instances"], "status": "SENT"}
