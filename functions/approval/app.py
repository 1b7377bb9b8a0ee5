"""Approval API: GET shows the confirmation page for a link, the page's POST decides.

HTTP API (payload v2). Every answer is a small HTML page with the same security headers; an
unexpected failure is a 503 page and one log line naming the exception type, never a trace.
With SSO on, a page without a session redirects to the issuer and GET /callback signs in
(certrelay.approval_sso).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache, partial
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay import approval_decisions as approvals
from certrelay import approval_pages as pages
from certrelay import approval_sso
from certrelay.approval_decisions import Answer, Dependencies, Visitor
from certrelay.approval_links import ApiSettings, load_key
from certrelay.metrics import count

logger = Logger()
app = APIGatewayHttpResolver()
ROUTE = "/approvals/<approval_id>"


@cache
def _dependencies() -> Dependencies:
    """Read once per container: settings, the HMAC key, the clients, the deployed profiles."""
    from certrelay.approvers import current_approvers
    from certrelay.profiles import load_profiles_file

    settings = ApiSettings.from_env(os.environ)
    key = load_key(boto3.client("secretsmanager"), settings.key_secret_arn)
    approvers = partial(
        current_approvers, boto3.client("acm"), load_profiles_file(settings.profiles_file)
    )
    clients = (boto3.client(name) for name in ("dynamodb", "stepfunctions", "kms"))
    return Dependencies(settings, key, *clients, approvers, approval_sso.UrllibHttp())


@app.route(ROUTE, method=["GET", "HEAD"])
def show(approval_id: str) -> Response[str]:
    deps, now = _dependencies(), datetime.now(UTC)
    visitor = _visitor(deps.key, now)
    if deps.settings.sso is not None and visitor.email is None:
        return _respond(
            approval_sso.login(deps.settings.sso, deps.key, approval_id, http=deps.http, now=now)
        )
    return _respond(
        approvals.show(
            approval_id,
            dynamodb=deps.dynamodb,
            key=deps.key,
            settings=deps.settings,
            visitor=visitor,
            now=now,
        )
    )


@app.get("/callback")
def signed_in() -> Response[str]:
    deps, event = _dependencies(), app.current_event
    if deps.settings.sso is None:
        return _respond(approvals.NOT_FOUND)
    answer = approval_sso.callback(
        deps.settings.sso,
        deps.key,
        dict(event.query_string_parameters or {}),
        _cookies(),
        http=deps.http,
        now=datetime.now(UTC),
    )
    return _respond(answer)


@app.post(ROUTE)
def decide(approval_id: str) -> Response[str]:
    deps, event, now = _dependencies(), app.current_event, datetime.now(UTC)
    answer = approvals.record_decision(
        approval_id,
        event.body or "",
        base64_encoded=bool(event.is_base64_encoded),
        dynamodb=deps.dynamodb,
        sfn=deps.sfn,
        kms=deps.kms,
        approvers_now=deps.approvers_now,
        key=deps.key,
        settings=deps.settings,
        visitor=_visitor(deps.key, now),
        now=now,
    )
    return _respond(answer)


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return _respond(approvals.NOT_FOUND)


@app.exception_handler(Exception)
def failed(error: Exception) -> Response[str]:
    logger.error("approval request failed", extra={"error_type": type(error).__name__})
    return _respond(Answer(503, pages.unavailable(), "error"))


def _visitor(key: bytes, now: datetime) -> Visitor:
    """The caller as API Gateway saw it; with SSO, the email of a genuine session cookie."""
    http = (app.current_event.raw_event.get("requestContext") or {}).get("http") or {}
    return Visitor(
        source_ip=str(http.get("sourceIp", "")),
        user_agent=str(http.get("userAgent", "")),
        email=approval_sso.session_email(key, _cookies(), now),
    )


def _cookies() -> dict[str, str]:
    """The request's cookies (payload v2 lists them as name=value); the first of a name wins."""
    found: dict[str, str] = {}
    for cookie in app.current_event.raw_event.get("cookies") or []:
        name, _, value = str(cookie).partition("=")
        found.setdefault(name.strip(), value.strip())
    return found


def _respond(answer: Answer) -> Response[str]:
    logger.info("approval answered", extra={"status": answer.status, "outcome": answer.outcome})
    if answer.outcome == approvals.NOT_ISSUED_OUTCOME:
        logger.error("Step Functions refused the stored task token as invalid")
    if answer.outcome in approvals.DECISION_OUTCOMES | {approvals.NOT_ISSUED_OUTCOME}:
        count("Approvals", {"outcome": answer.outcome})
    body = "" if app.current_event.http_method.upper() == "HEAD" else answer.page
    headers = {**pages.HEADERS, **({"Location": answer.location} if answer.location else {})}
    cookies = [
        Cookie(
            name,
            value,
            path="/",
            secure=True,
            http_only=True,
            max_age=age,
            same_site=SameSite.LAX_MODE,
        )
        for name, value, age in answer.cookies
    ]
    return Response(status_code=answer.status, body=body, headers=headers, cookies=cookies)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
