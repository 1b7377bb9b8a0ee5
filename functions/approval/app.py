"""Approval API: GET shows the confirmation page for a link, the page's POST decides.

HTTP API (payload v2). Every answer is a small HTML page with the same security headers; an
unexpected failure is a 503 page and one log line naming the exception type, never a trace.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay import approval_pages as pages
from certrelay import approvals
from certrelay.approval_links import ApiSettings, load_key
from certrelay.approvals import Answer, Visitor
from certrelay.metrics import count

logger = Logger()
app = APIGatewayHttpResolver()
ROUTE = "/approvals/<approval_id>"


@cache
def _dependencies() -> tuple[ApiSettings, bytes, Any, Any]:
    """Read once per container: settings, the HMAC key, the DynamoDB and Step Functions clients."""
    settings = ApiSettings.from_env(os.environ)
    key = load_key(boto3.client("secretsmanager"), settings.key_secret_arn)
    return settings, key, boto3.client("dynamodb"), boto3.client("stepfunctions")


@app.route(ROUTE, method=["GET", "HEAD"])
def show(approval_id: str) -> Response[str]:
    settings, key, dynamodb, _ = _dependencies()
    answer = approvals.show(
        approval_id,
        dynamodb=dynamodb,
        key=key,
        settings=settings,
        visitor=_visitor(),
        now=datetime.now(UTC),
    )
    return _respond(answer)


@app.post(ROUTE)
def decide(approval_id: str) -> Response[str]:
    settings, key, dynamodb, sfn = _dependencies()
    event = app.current_event
    answer = approvals.decide(
        approval_id,
        event.body or "",
        base64_encoded=bool(event.is_base64_encoded),
        dynamodb=dynamodb,
        sfn=sfn,
        key=key,
        settings=settings,
        visitor=_visitor(),
        now=datetime.now(UTC),
    )
    return _respond(answer)


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return _respond(approvals.NOT_FOUND)


@app.exception_handler(Exception)
def failed(error: Exception) -> Response[str]:
    logger.error("approval request failed", extra={"error_type": type(error).__name__})
    return _respond(Answer(503, pages.unavailable(), "error"))


def _visitor() -> Visitor:
    """The caller as API Gateway saw it; the SSO email claim when a JWT authorizer ran."""
    context = app.current_event.raw_event.get("requestContext") or {}
    http = context.get("http") or {}
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    verified = str(claims.get("email_verified", "true")).lower() != "false"
    email = claims.get("email") if verified else None
    return Visitor(
        source_ip=str(http.get("sourceIp", "")),
        user_agent=str(http.get("userAgent", "")),
        email=str(email) if email else None,
    )


def _respond(answer: Answer) -> Response[str]:
    logger.info("approval answered", extra={"status": answer.status, "outcome": answer.outcome})
    if answer.outcome in approvals.DECISION_OUTCOMES:
        count("Approvals", {"outcome": answer.outcome})
    body = "" if app.current_event.http_method.upper() == "HEAD" else answer.page
    return Response(status_code=answer.status, body=body, headers=pages.HEADERS)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
