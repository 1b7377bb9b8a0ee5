"""SSO in a browser's shoes: the approval pages against a small OIDC issuer the test starts.

GIVEN SSO mode (issuer + client id) WHEN an approver opens their link THEN they are sent to sign
in (authorization code + PKCE + state + nonce), come back through /callback with a session
cookie, see the page and decide; a forged, replayed or foreign sign-in gets no session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from functions.approval import app as approval_app
from tests.functional.approval_fixtures import (
    APPROVER,
    BASE_URL,
    SECOND,
    Aws,
    audits,
    aws,
    call,
    csrf_of,
    finished,
    http,
    links,
    mails,
    request,
    table,
    waiting_execution,
)
from tests.functional.oidc_issuer import CLIENT_ID, Issuer, running_issuer

__all__ = ["aws"]  # the fixture, imported for pytest


@pytest.fixture
def issuer(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Issuer]:
    with running_issuer() as running:
        monkeypatch.setenv("SSO_ISSUER", running.url)
        monkeypatch.setenv("SSO_CLIENT_ID", CLIENT_ID)
        approval_app._dependencies.cache_clear()
        yield running


class _NoRedirects(HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def browser_visits_issuer(location: str) -> str:
    """The browser follows the 302 to the issuer; return where the issuer sends it back."""
    opener = build_opener(_NoRedirects())
    try:
        opener.open(Request(location))
    except Exception as error:  # urllib raises HTTPError for the unfollowed 302
        return str(error.headers["Location"])  # type: ignore[attr-defined]
    raise AssertionError("the issuer did not redirect back")


def cookie_pairs(answer: dict[str, Any]) -> dict[str, str]:
    """name -> value of the Set-Cookie lines (an empty value clears)."""
    return {
        c.split(";")[0].split("=", 1)[0]: c.split(";")[0].split("=", 1)[1]
        for c in answer.get("cookies", [])
    }


def sign_in(approval_id: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Open the link, sign in at the issuer, come back: (first GET, callback answer, page)."""
    first = call(http("GET", approval_id))
    login = cookie_pairs(first)["certrelay_login"]
    back = urlsplit(browser_visits_issuer(first["headers"]["Location"]))
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{BASE_URL}/callback"
    returned = call(
        http("GET", "x", path="/callback", query=back.query, cookies=[f"certrelay_login={login}"])
    )
    session = cookie_pairs(returned).get("certrelay_session", "")
    page = call(
        http("GET", approval_id, cookies=[f"certrelay_session={session}"] if session else [])
    )
    return first, returned, page


def test_an_approver_signs_in_at_the_issuer_and_decides(aws: Aws, issuer: Issuer) -> None:
    # GIVEN a waiting execution and the approver's link
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    before = table(aws)
    # WHEN the approver opens it without a session
    first, returned, page = sign_in(approval_id)
    # THEN they were sent to the issuer with a code request, PKCE (S256), state and nonce
    assert first["statusCode"] == 302
    (asked,) = issuer.authorize_requests
    assert asked["response_type"] == "code"
    assert asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == f"{BASE_URL}/callback"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 43
    assert len(asked["nonce"]) >= 43
    assert "openid" in asked["scope"].split()
    (login_cookie,) = first["cookies"]
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert attribute in login_cookie
    # AND the code was exchanged with the PKCE verifier, the session set, the login cleared
    (exchange,) = issuer.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["code_verifier"] not in first["headers"]["Location"]
    assert returned["statusCode"] == 302
    assert returned["headers"]["Location"] == f"{BASE_URL}/approvals/{approval_id}"
    session_cookie = next(c for c in returned["cookies"] if c.startswith("certrelay_session="))
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Max-Age=900"):
        assert attribute in session_cookie
    assert cookie_pairs(returned)["certrelay_login"] == ""
    # AND the page shows who is signed in; signing in changed no approval state
    assert page["statusCode"] == 200
    assert "Signed in as" in page["body"]
    assert APPROVER in page["body"]
    assert table(aws) == before
    # WHEN they approve with the session cookie and the page's form token
    session = cookie_pairs(returned)["certrelay_session"]
    form = {"csrf": csrf_of(page["body"]), "decision": "approve", "reason": "signed in"}
    answer = call(http("POST", approval_id, form=form, cookies=[f"certrelay_session={session}"]))
    # THEN the execution resumes and the audit says SSO
    assert answer["statusCode"] == 200
    assert finished(aws, execution)["status"] == "SUCCEEDED"
    assert audits(aws, approval_id)[0]["authenticated_by"] == "sso"


def test_a_post_without_a_session_is_refused_even_with_a_form_token(
    aws: Aws, issuer: Issuer
) -> None:
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    _, _, page = sign_in(approval_id)
    form = {"csrf": csrf_of(page["body"]), "decision": "approve"}
    # WHEN the form is posted without the session cookie (cookie-less cross-site POST)
    answer = call(http("POST", approval_id, form=form))
    # THEN 403 and the workflow still waits
    assert answer["statusCode"] == 403
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


def test_someone_else_signed_in_sees_no_page(aws: Aws, issuer: Issuer) -> None:
    # GIVEN the issuer signs in another person (an approver of the profile, but not this link's)
    execution, token = waiting_execution(aws)
    request(token, execution, approvers=[APPROVER, SECOND])
    approval_id = links(mails(aws))[APPROVER]
    issuer.email = SECOND
    # WHEN they open the approver's link
    _, returned, page = sign_in(approval_id)
    # THEN they get a session, but the page is 403 naming them
    assert returned["statusCode"] == 302
    assert page["statusCode"] == 403
    assert SECOND in page["body"]


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        ({"sign_with": rsa.generate_private_key(65537, 2048)}, "signature"),
        ({"claims": {"nonce": "another-sign-in"}}, "nonce"),
        ({"claims": {"aud": "another-client"}}, "audience"),
        ({"claims": {"iss": "https://evil.example"}}, "issuer"),
        ({"claims": {"exp": 1_000_000_000, "iat": 999_999_000}}, "expired"),
        ({"claims": {"email_verified": False}}, "unverified email"),
        ({"claims": {"email": None}}, "no email"),
    ],
)
def test_an_id_token_that_does_not_hold_gives_no_session(
    aws: Aws, issuer: Issuer, tamper: dict[str, Any], why: str
) -> None:
    # GIVEN an issuer whose ID token is wrong in one way
    for name, value in tamper.items():
        setattr(issuer, name, value)
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    # WHEN the approver comes back from signing in
    _, returned, page = sign_in(approval_id)
    # THEN no session is set and the page sends them to sign in again
    assert returned["statusCode"] == 403, why
    assert "certrelay_session" not in cookie_pairs(returned)
    assert "Sign-in failed" in returned["body"]
    assert page["statusCode"] == 302


def test_a_callback_with_a_foreign_state_or_no_login_cookie_is_refused(
    aws: Aws, issuer: Issuer
) -> None:
    # GIVEN a sign-in started for the approver's link
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    first = call(http("GET", approval_id))
    login = cookie_pairs(first)["certrelay_login"]
    back = parse_qs(urlsplit(browser_visits_issuer(first["headers"]["Location"])).query)
    code = back["code"][0]
    # WHEN the callback arrives with another state, or without the login cookie (login CSRF)
    forged = call(
        http(
            "GET",
            "x",
            path="/callback",
            query=f"code={code}&state=forged",
            cookies=[f"certrelay_login={login}"],
        )
    )
    cookieless = call(
        http("GET", "x", path="/callback", query=f"code={code}&state={back['state'][0]}")
    )
    tampered = call(
        http(
            "GET",
            "x",
            path="/callback",
            query=f"code={code}&state={back['state'][0]}",
            cookies=[f"certrelay_login={login[:-2]}xx"],
        )
    )
    # THEN 400 each time, no session, and the code was never exchanged
    for answer in (forged, cookieless, tampered):
        assert answer["statusCode"] == 400
        assert "certrelay_session" not in cookie_pairs(answer)
    assert issuer.token_requests == []


def test_without_sso_there_is_no_callback_and_links_open_directly(aws: Aws) -> None:
    execution, token = waiting_execution(aws)
    request(token, execution)
    approval_id = links(mails(aws))[APPROVER]
    assert call(http("GET", "x", path="/callback", query="code=c&state=s"))["statusCode"] == 404
    assert call(http("GET", approval_id))["statusCode"] == 200
