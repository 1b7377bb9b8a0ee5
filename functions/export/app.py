"""Export Certificate: ACM's certificate out as an encrypted bundle in S3; references only back."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.export import ExportSettings, export_certificate, role_arn
from certrelay.profiles import Profile, load_profiles_file

logger = Logger()


@cache
def _dependencies() -> tuple[ExportSettings, dict[str, Profile], Any, Any, Any]:
    """Read once per container: settings, the deployed profiles, ACM, S3, Secrets Manager."""
    settings = ExportSettings.from_env(os.environ)
    caller = boto3.client("sts").get_caller_identity()["Arn"]  # the export role, for the Deny
    settings = dataclasses.replace(settings, export_role_arn=role_arn(caller))
    return (
        settings,
        load_profiles_file(os.environ.get("PROFILES_FILE")),
        boto3.client("acm"),
        boto3.client("s3"),
        boto3.client("secretsmanager"),
    )


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, profiles, acm, s3, secretsmanager = _dependencies()
    result = export_certificate(
        event,
        acm_client=acm,
        s3_client=s3,
        secrets_client=secretsmanager,
        settings=settings,
        profiles=profiles,
        now=datetime.now(UTC),
    )
    logger.info(
        "certificate exported" if result["created"] else "certificate already exported",
        extra={
            "execution": str(event.get("execution", "")),
            "prefix": result["prefix"],
            "serial": result["serial"],
            "fingerprint": result["fingerprint"],
            "not_after": result["not_after"],
            "bundle_created": result["created"],
        },
    )
    return result
