"""Browser SSO for the approval pages: the OIDC authorization-code flow with PKCE, state and nonce.

With SSO on, a page opened without a session redirects to the issuer's authorization endpoint
(discovered from `<issuer>/.well-known/openid-configuration`), carrying a fresh state, nonce and
PKCE challenge that a short signed login cookie remembers. The issuer sends the browser back to
`/callback` with a code; the code is exchanged at the token endpoint with the PKCE verifier, and
the ID token's signature (the issuer's JWKS), issuer, audience, expiry and nonce are checked. The
verified email goes into a session cookie (HttpOnly, Secure, SameSite=Lax, HMAC-signed with the
link key, 15 minutes) and the browser returns to its page. The callback only sets a session: no
GET changes an approval.

Checklist APR-13 asks the decision POST to authenticate by an Authorization header and to refuse
cookie-only requests. A plain HTML form cannot send that header, so here the session is a cookie.
The compensating control is the page's CSRF form token, bound to the link and to the session's
email: another site can neither read nor forge it. SameSite=Lax also keeps the cookie off
cross-site POSTs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from certrelay import approval_pages as pages
from certrelay.approval_decisions import Answer
from certrelay.approval_links import SsoSettings, sign, signed_text
from certrelay.owners import normalize_email

LOGIN_COOKIE = "certrelay_login"
SESSION_COOKIE = "certrelay_session"
LOGIN_SECONDS = 600
SESSION_SECONDS = 900
_LEEWAY = 60  # seconds of clock skew allowed on the ID token's times
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
_MAX_RESPONSE = 256 * 1024
_URL = re.compile(r"^(https://[^\s]+|http://(localhost|127\.0\.0\.1)(:\d+)?(/[^\s]*)?)$")


class SignInFailed(Exception):
    """The issuer's answer or the ID token did not hold; the message says which check failed."""


class Http(Protocol):
    """The two calls made on the issuer: read a JSON document, post a form for a JSON answer."""

    def get_json(self, url: str) -> dict[str, Any]: ...

    def post_form(self, url: str, fields: Mapping[str, str]) -> dict[str, Any]: ...


class UrllibHttp:
    """Http over urllib: https (or loopback http), a timeout, a size cap, JSON objects only."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._documents: dict[str, dict[str, Any]] = {}  # GET answers, kept per container

    def get_json(self, url: str) -> dict[str, Any]:
        if url not in self._documents:
            request = urllib.request.Request(_checked(url), method="GET")  # noqa: S310 - checked
            self._documents[url] = self._json(request)
        return self._documents[url]

    def post_form(self, url: str, fields: Mapping[str, str]) -> dict[str, Any]:
        data = urllib.parse.urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        request = urllib.request.Request(_checked(url), data, headers, method="POST")  # noqa: S310
        return self._json(request)

    def _json(self, request: urllib.request.Request) -> dict[str, Any]:
        request.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                raw = answer.read(_MAX_RESPONSE + 1)
        except OSError as error:
            raise SignInFailed(f"the issuer did not answer ({type(error).__name__})") from None
        if len(raw) > _MAX_RESPONSE:
            raise SignInFailed("the issuer's answer is too large")
        try:
            document = json.loads(raw)
        except ValueError:
            raise SignInFailed("the issuer's answer is not JSON") from None
        if not isinstance(document, dict):
            raise SignInFailed("the issuer's answer is not a JSON object")
        return document


def session_email(key: bytes, cookies: Mapping[str, str], now: datetime) -> str | None:
    """The email of a genuine, unexpired session cookie; None otherwise."""
    session = _opened(key, "session", cookies.get(SESSION_COOKIE, ""), now)
    email = session.get("m") if session else None
    return email if isinstance(email, str) and email else None


def new_session(key: bytes, email: str, now: datetime) -> str:
    """A session cookie's value: the verified email, signed, good for SESSION_SECONDS."""
    return _sealed(key, "session", {"m": email}, now, SESSION_SECONDS)


def login(sso: SsoSettings, key: bytes, approval_id: str, *, http: Http, now: datetime) -> Answer:
    """302 to the issuer's authorization endpoint; the login cookie remembers what to check."""
    metadata = discovery(http, sso.issuer)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    remembered = {"s": state, "n": nonce, "v": verifier, "a": approval_id}
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": sso.client_id,
            "redirect_uri": sso.redirect_uri,
            "scope": "openid email",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    cookie = (LOGIN_COOKIE, _sealed(key, "login", remembered, now, LOGIN_SECONDS), LOGIN_SECONDS)
    location = f"{metadata['authorization_endpoint']}?{query}"
    return Answer(302, pages.signing_in(), "sign_in", location=location, cookies=(cookie,))


def callback(
    sso: SsoSettings,
    key: bytes,
    query: Mapping[str, str],
    cookies: Mapping[str, str],
    *,
    http: Http,
    now: datetime,
) -> Answer:
    """The issuer's redirect: check state, exchange the code, verify the ID token, set a session."""
    remembered = _opened(key, "login", cookies.get(LOGIN_COOKIE, ""), now)
    state = query.get("state", "")
    if remembered is None or not hmac.compare_digest(
        state.encode("utf-8", "surrogatepass"), str(remembered.get("s", "")).encode()
    ):
        return Answer(
            400, pages.sign_in_failed("the sign-in expired or was not started here"), "sso_state"
        )
    clear = (LOGIN_COOKIE, "", 0)
    if "code" not in query:
        return Answer(
            403, pages.sign_in_failed("the issuer refused"), "sso_refused", cookies=(clear,)
        )
    try:
        email = _verified_email(sso, http, query["code"], remembered, now)
    except SignInFailed as error:
        return Answer(403, pages.sign_in_failed(str(error)), "sso_invalid", cookies=(clear,))
    session = (SESSION_COOKIE, new_session(key, email, now), SESSION_SECONDS)
    location = f"{sso.base_url}/approvals/{urllib.parse.quote(str(remembered['a']), safe='')}"
    return Answer(302, pages.signing_in(), "signed_in", location=location, cookies=(session, clear))


def discovery(http: Http, issuer: str) -> dict[str, Any]:
    """The issuer's OpenID configuration (Http keeps it); its issuer must be the one configured."""
    document = http.get_json(f"{issuer}/.well-known/openid-configuration")
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise SignInFailed("the discovery document names another issuer")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not _URL.fullmatch(str(document.get(name, ""))):
            raise SignInFailed(f"the discovery document has no usable {name}")
    return document


def _verified_email(
    sso: SsoSettings, http: Http, code: str, remembered: Mapping[str, Any], now: datetime
) -> str:
    import jwt  # only the callback needs it: keep it off the pages' cold start

    metadata = discovery(http, sso.issuer)
    tokens = http.post_form(
        str(metadata["token_endpoint"]),
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": sso.redirect_uri,
            "client_id": sso.client_id,
            "code_verifier": str(remembered["v"]),
        },
    )
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise SignInFailed("the token endpoint returned no ID token")
    try:
        signing_key = _jwks(str(metadata["jwks_uri"])).get_signing_key_from_jwt(id_token)
        claims: dict[str, Any] = jwt.decode(
            id_token,
            signing_key.key,
            algorithms=_ALGORITHMS,
            audience=sso.client_id,
            issuer=sso.issuer,
            options={
                "require": ["iss", "aud", "exp", "iat", "nonce"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as error:
        raise SignInFailed(f"the ID token is not valid ({type(error).__name__})") from None
    moment = int(now.timestamp())
    if int(claims["exp"]) < moment - _LEEWAY or int(claims["iat"]) > moment + _LEEWAY:
        raise SignInFailed("the ID token has expired or is not yet valid")
    if "nbf" in claims and int(claims["nbf"]) > moment + _LEEWAY:
        raise SignInFailed("the ID token is not yet valid")
    if not hmac.compare_digest(str(claims["nonce"]).encode(), str(remembered["n"]).encode()):
        raise SignInFailed("the ID token's nonce is not this sign-in's")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != sso.client_id:
        raise SignInFailed("the ID token was issued to another party")
    if str(claims.get("email_verified", "true")).lower() == "false":
        raise SignInFailed("the issuer has not verified the email address")
    email = normalize_email(str(claims.get("email") or ""))
    if email is None:
        raise SignInFailed("the ID token carries no email address")
    return email.lower()


@cache
def _jwks(uri: str) -> Any:
    import jwt

    return jwt.PyJWKClient(_checked(uri), cache_keys=True, timeout=5)


def _sealed(key: bytes, purpose: str, values: Mapping[str, Any], now: datetime, ttl: int) -> str:
    text = _b64(json.dumps({**values, "e": int(now.timestamp()) + ttl}).encode())
    return sign(key, purpose, text)


def _opened(key: bytes, purpose: str, value: str, now: datetime) -> dict[str, Any] | None:
    text = signed_text(key, purpose, value) if value else None
    if text is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return None
    if not isinstance(values, dict) or int(values.get("e", 0)) < int(now.timestamp()):
        return None
    return values


def _checked(url: str) -> str:
    if not _URL.fullmatch(url):
        raise SignInFailed("an issuer URL is neither https nor loopback http")
    return url


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
