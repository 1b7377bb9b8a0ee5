"""The secrets of approval links: the HMAC key, link ids, CSRF tokens, digests, and settings.

The task token never leaves AWS. A link carries a random id bound to its approver and deadline by
an HMAC; only the id's SHA-256 is stored. The confirmation page's form carries a CSRF token bound
to its link by the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from certrelay.errors import ConfigurationError

MIN_KEY_CHARS = 32
_ID = re.compile(r"^[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{22}$")  # token_urlsafe(24) "." mac[:22]
_BASE_URL = re.compile(
    r"^(https://[A-Za-z0-9.-]+(:\d+)?|http://(localhost|127\.0\.0\.1)(:\d+)?)(/[A-Za-z0-9._~/-]*)?$"
)


class SecretReader(Protocol):
    """The one Secrets Manager call certrelay makes."""

    def get_secret_value(self, *, SecretId: str) -> Mapping[str, Any]: ...


def load_key(secrets_client: SecretReader, secret_arn: str) -> bytes:
    """The HMAC key: the secret's SecretString, at least MIN_KEY_CHARS characters."""
    value = str(secrets_client.get_secret_value(SecretId=secret_arn).get("SecretString") or "")
    if len(value) < MIN_KEY_CHARS:
        raise ConfigurationError(
            f"the approval key secret must hold at least {MIN_KEY_CHARS} characters"
        )
    return value.encode()


@dataclass(frozen=True)
class SsoSettings:
    """The OIDC client the approval pages are when SSO is on: issuer, client id, own base URL."""

    issuer: str
    client_id: str
    base_url: str  # the API's URL; the redirect URI is <base_url>/callback

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"


@dataclass(frozen=True)
class ApiSettings:
    """What the approval API needs: its table, its keys, the profiles, and SSO when it is on."""

    table: str
    key_secret_arn: str
    token_key_arn: str
    profiles_file: str
    sso: SsoSettings | None = None

    @property
    def sso_enabled(self) -> bool:
        return self.sso is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ApiSettings:
        issuer = environ.get("SSO_ISSUER", "").strip().rstrip("/")
        sso = None
        if issuer:
            if not _BASE_URL.fullmatch(issuer):
                raise ConfigurationError(f"SSO_ISSUER {issuer!r} must be an https:// URL")
            sso = SsoSettings(
                issuer=issuer,
                client_id=required(environ, "SSO_CLIENT_ID"),
                base_url=_base_url(environ),
            )
        return cls(
            table=required(environ, "APPROVAL_TABLE_NAME"),
            key_secret_arn=required(environ, "APPROVAL_KEY_SECRET_ARN"),
            token_key_arn=required(environ, "APPROVAL_TOKEN_KEY_ARN"),
            profiles_file=required(environ, "PROFILES_FILE"),
            sso=sso,
        )


@dataclass(frozen=True)
class RequestSettings:
    """What "Request Approval" needs: its table, where links point, the topic, the key."""

    table: str
    base_url: str
    topic_arn: str
    key_secret_arn: str
    token_key_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RequestSettings:
        return cls(
            table=required(environ, "APPROVAL_TABLE_NAME"),
            base_url=_base_url(environ),
            topic_arn=required(environ, "NOTIFICATION_TOPIC_ARN"),
            key_secret_arn=required(environ, "APPROVAL_KEY_SECRET_ARN"),
            token_key_arn=required(environ, "APPROVAL_TOKEN_KEY_ARN"),
        )


def _base_url(environ: Mapping[str, str]) -> str:
    base_url = required(environ, "APPROVAL_BASE_URL").rstrip("/")
    if not _BASE_URL.fullmatch(base_url):
        raise ConfigurationError(
            f"APPROVAL_BASE_URL {base_url!r} must be an https:// URL without query or fragment"
        )
    return base_url


def required(environ: Mapping[str, str], name: str) -> str:
    """One environment setting that must be present."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set")
    return value


def new_link_id(key: bytes, approver: str, expires_at: int) -> str:
    """192 random bits, then an HMAC binding them to the approver and the deadline."""
    random_part = secrets.token_urlsafe(24)
    return f"{random_part}.{_link_mac(key, random_part, approver, expires_at)}"


def link_is_genuine(key: bytes, approval_id: str, approver: str, expires_at: int) -> bool:
    """Whether the id is well formed and its MAC binds it to this approver and deadline.

    The MAC is computed for every id, well formed or not, so bad ids cannot be told apart.
    """
    well_formed = _ID.fullmatch(approval_id) is not None
    random_part, _, given = approval_id.rpartition(".")
    expected = _link_mac(key, random_part, approver, expires_at)
    genuine = hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
    return well_formed and genuine


def csrf_token(key: bytes, approval_id: str, session: str = "") -> str:
    """Stateless CSRF token for the page's form, bound to its link (and SSO session's email)."""
    return _mac(key, f"csrf|{approval_id}|{session}" if session else f"csrf|{approval_id}")


def batch_csrf_token(key: bytes, approval_id: str, session: str = "") -> str:
    """The batch page's CSRF token: bound to the link that opened it (and the SSO session's email),
    under its own purpose, so neither page's token serves the other's form."""
    return _mac(key, f"batch-csrf|{approval_id}|{session}")


def sign(key: bytes, purpose: str, text: str) -> str:
    """`text` with an HMAC over it and its purpose: for the SSO cookies."""
    return f"{text}.{_mac(key, f'{purpose}|{text}')}"


def signed_text(key: bytes, purpose: str, value: str) -> str | None:
    """The text `sign` signed for this purpose; None when the MAC does not hold."""
    text, _, given = value.rpartition(".")
    expected = _mac(key, f"{purpose}|{text}")
    genuine = hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
    return text if genuine and text else None


def digest(text: str) -> str:
    """Hex SHA-256: the only form in which task tokens and link ids become table keys."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _link_mac(key: bytes, random_part: str, approver: str, expires_at: int) -> str:
    return _mac(key, f"{random_part}|{approver}|{expires_at}")[:22]


def _mac(key: bytes, text: str) -> str:
    mac = hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")
