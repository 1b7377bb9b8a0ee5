"""The approval HTTP API's routes: GET shows a link's confirmation page, the page's POST decides;
`<link>/batch` does the same for every pending renewal of the link's approver (approval_batch).

HTTP API (payload v2) through Powertools' resolver. Every answer is a small HTML page with the
same security headers; an unexpected failure is a 503 page and one log line naming the
exception type, never a trace. With SSO on, a page without a session redirects to the issuer
and GET /callback signs in (certrelay.approval_sso). functions/approval/app.py holds one
`ApprovalApi` per container and hands it each request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay import approval_batch, approval_decisions, approval_sso
from certrelay import approval_pages as pages
from certrelay.approval_decisions import Answer, Dependencies, Visitor
from certrelay.approval_links import ApiSettings, load_key
from certrelay.clients import client
from certrelay.metrics import count

ROUTE = "/approvals/<approval_id>"
BATCH_ROUTE = ROUTE + "/batch"  # every pending renewal of the link's approver, on one page


def dependencies(environ: Mapping[str, str]) -> Dependencies:
    """Read once per container: settings, the HMAC key, the clients, the deployed profiles."""
    from certrelay.accounts import sessions_from_env
    from certrelay.approvers import approvers_reader
    from certrelay.profiles import load_profiles_file

    settings = ApiSettings.from_env(environ)
    key = load_key(client("secretsmanager"), settings.key_secret_arn)
    profiles, sessions = load_profiles_file(settings.profiles_file), sessions_from_env(environ)
    approvers = approvers_reader(client("acm"), profiles, sessions)  # a hub: members too
    dynamodb, sfn, kms = (
        client("dynamodb"),
        client("stepfunctions"),
        client("kms"),
    )
    return Dependencies(settings, key, dynamodb, sfn, kms, approvers, approval_sso.UrllibHttp())


class ApprovalApi:
    """The resolver and its routes; `deps` is asked per request, so a test can swap it."""

    def __init__(self, deps: Callable[[], Dependencies], logger: Logger) -> None:
        self.app, self._deps, self._log = APIGatewayHttpResolver(), deps, logger
        self.app.route(ROUTE, method=["GET", "HEAD"])(self.show)
        self.app.get("/callback")(self.signed_in)
        self.app.post(ROUTE)(self.post_decision)
        self.app.route(BATCH_ROUTE, method=["GET", "HEAD"])(self.show_batch)
        self.app.post(BATCH_ROUTE)(self.decide_batch)
        self.app.not_found(self.not_found)
        self.app.exception_handler(Exception)(self.failed)

    def resolve(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return self.app.resolve(event, context)

    def show(self, approval_id: str) -> Response[str]:
        """GET (and HEAD): the confirmation page; never changes anything."""
        deps, now = self._deps(), datetime.now(UTC)
        visitor = self._visitor(deps.key, now)
        if (login := self._sign_in_first(deps, visitor, approval_id, now)) is not None:
            return login
        answer = approval_decisions.show(
            approval_id,
            dynamodb=deps.dynamodb,
            key=deps.key,
            settings=deps.settings,
            visitor=visitor,
            now=now,
            others=lambda approval: approval_batch.others_waiting(
                deps.dynamodb, deps.settings.table, approval, now
            ),
        )
        return self._respond(answer)

    def show_batch(self, approval_id: str) -> Response[str]:
        """GET (and HEAD) /batch: the approver's pending renewals on one page; changes nothing."""
        deps, now = self._deps(), datetime.now(UTC)
        visitor = self._visitor(deps.key, now)
        # after sign-in the visitor is back on the link's own page, which links here
        if (login := self._sign_in_first(deps, visitor, approval_id, now)) is not None:
            return login
        answer = approval_batch.show(
            approval_id,
            dynamodb=deps.dynamodb,
            key=deps.key,
            settings=deps.settings,
            visitor=visitor,
            now=now,
        )
        return self._respond(answer)

    def decide_batch(self, approval_id: str) -> Response[str]:
        """POST /batch: approve or reject the ticked renewals, each on its own."""
        deps, event, now = self._deps(), self.app.current_event, datetime.now(UTC)
        answer, outcomes = approval_batch.decide_selection(
            approval_id,
            event.body or "",
            base64_encoded=bool(event.is_base64_encoded),
            dynamodb=deps.dynamodb,
            sfn=deps.sfn,
            kms=deps.kms,
            approvers_now=deps.approvers_now,
            key=deps.key,
            settings=deps.settings,
            visitor=self._visitor(deps.key, now),
            now=now,
        )
        for outcome in outcomes:
            self._counted(outcome)
        if "error" in outcomes:
            self._log.error("a batch item failed", extra={"failed": outcomes.count("error")})
        return self._respond(answer)

    def signed_in(self) -> Response[str]:
        """GET /callback: the SSO issuer's answer, a session cookie, back to the page."""
        deps, event = self._deps(), self.app.current_event
        if deps.settings.sso is None:
            return self._respond(approval_decisions.NOT_FOUND)
        answer = approval_sso.callback(
            deps.settings.sso,
            deps.key,
            dict(event.query_string_parameters or {}),
            self._cookies(),
            http=deps.http,
            now=datetime.now(UTC),
        )
        return self._respond(answer)

    def post_decision(self, approval_id: str) -> Response[str]:
        """POST from the page's form: approve or reject, once."""
        deps, event, now = self._deps(), self.app.current_event, datetime.now(UTC)
        answer = approval_decisions.record_decision(
            approval_id,
            event.body or "",
            base64_encoded=bool(event.is_base64_encoded),
            dynamodb=deps.dynamodb,
            sfn=deps.sfn,
            kms=deps.kms,
            approvers_now=deps.approvers_now,
            key=deps.key,
            settings=deps.settings,
            visitor=self._visitor(deps.key, now),
            now=now,
        )
        return self._respond(answer)

    def _sign_in_first(
        self, deps: Dependencies, visitor: Visitor, approval_id: str, now: datetime
    ) -> Response[str] | None:
        """With sign-in on, a visitor with no session goes to the issuer (and back to the link)."""
        sso = deps.settings.sso
        if sso is None or visitor.email is not None:
            return None
        login = approval_sso.login(sso, deps.key, approval_id, http=deps.http, now=now)
        return self._respond(login)

    def not_found(self, _: Exception) -> Response[str]:
        return self._respond(approval_decisions.NOT_FOUND)

    def failed(self, error: Exception) -> Response[str]:
        self._log.error("approval request failed", extra={"error_type": type(error).__name__})
        return self._respond(Answer(503, pages.unavailable(), "error"))

    def _counted(self, outcome: str) -> None:
        """Count each decision, and each token Step Functions called invalid (also logged)."""
        if outcome == approval_decisions.NOT_ISSUED_OUTCOME:
            self._log.error("Step Functions refused the stored task token as invalid")
        if outcome in approval_decisions.DECISION_OUTCOMES | {
            approval_decisions.NOT_ISSUED_OUTCOME
        }:
            count("Approvals", {"outcome": outcome})

    def _visitor(self, key: bytes, now: datetime) -> Visitor:
        """The caller as API Gateway saw it; with SSO, the email of a genuine session cookie."""
        http = (self.app.current_event.raw_event.get("requestContext") or {}).get("http") or {}
        return Visitor(
            source_ip=str(http.get("sourceIp", "")),
            user_agent=str(http.get("userAgent", "")),
            email=approval_sso.session_email(key, self._cookies(), now),
        )

    def _cookies(self) -> dict[str, str]:
        """The request's cookies (payload v2 lists them as name=value); the first of a name wins."""
        found: dict[str, str] = {}
        for cookie in self.app.current_event.raw_event.get("cookies") or []:
            name, _, value = str(cookie).partition("=")
            found.setdefault(name.strip(), value.strip())
        return found

    def _respond(self, answer: Answer) -> Response[str]:
        self._log.info(
            "approval answered", extra={"status": answer.status, "outcome": answer.outcome}
        )
        self._counted(answer.outcome)
        body = "" if self.app.current_event.http_method.upper() == "HEAD" else answer.page
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
