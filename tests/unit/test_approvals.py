"""The pure parts of approvals: link ids, CSRF tokens, settings, the key, the email, the pages."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from certrelay import approval_pages as pages
from certrelay.approval_links import (
    ApiSettings,
    RequestSettings,
    csrf_token,
    digest,
    load_key,
    new_link_id,
)
from certrelay.errors import ApprovalRejected, CertrelayError, ConfigurationError
from certrelay.mail import MAX_SUBJECT

KEY = b"unit-test-key-0123456789abcdefghijklmnop"
DEADLINE = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
REQUEST_ENV = {
    "APPROVAL_TABLE_NAME": "approvals",
    "APPROVAL_BASE_URL": "https://abc.execute-api.us-east-1.amazonaws.com/",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:certrelay",
    "APPROVAL_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k",
    "APPROVAL_TOKEN_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:alias/certrelay-approval-token",
}
MAIL = pages.Mail(
    round="request",
    domain="www.example.com",
    arn="arn:aws:acm:us-east-1:123456789012:certificate/abc",
    serial="0a:1b",
    not_after="2026-03-01T12:00:00Z",
    profile="web",
    targets=3,
    deadline=DEADLINE,
    execution="https://us-east-1.console.aws.amazon.com/states/home#/x",
)


class FakeSecrets:
    """Secrets Manager's one call, answering a fixed SecretString."""

    def __init__(self, value: str) -> None:
        self.value = value

    def get_secret_value(self, *, SecretId: str) -> Mapping[str, Any]:
        return {"ARN": SecretId, "SecretString": self.value}


def test_a_link_id_carries_192_random_bits_and_a_mac_and_is_never_repeated() -> None:
    # GIVEN one approver and deadline
    # WHEN many ids are made
    ids = {new_link_id(KEY, "a@example.com", 1_700_000_000) for _ in range(500)}
    # THEN each is url-safe random (32 chars = 192 bits) "." a 22-char MAC, and all differ
    assert len(ids) == 500
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{22}", i) for i in ids)


def test_a_link_id_mac_binds_the_random_part_to_approver_and_deadline() -> None:
    # GIVEN an id made for alice with a deadline
    approval_id = new_link_id(KEY, "alice@example.com", 1_700_000_000)
    random_part, mac = approval_id.split(".")

    # WHEN the MAC is recomputed (HMAC-SHA256, base64url, 22 chars) for the same and other facts
    def mac_for(approver: str, expires_at: int) -> str:
        text = f"{random_part}|{approver}|{expires_at}".encode()
        return base64.urlsafe_b64encode(hmac.new(KEY, text, hashlib.sha256).digest()).decode()[:22]

    # THEN only alice's facts reproduce it
    assert mac == mac_for("alice@example.com", 1_700_000_000)
    assert mac != mac_for("mallory@example.com", 1_700_000_000)
    assert mac != mac_for("alice@example.com", 1_700_000_001)


def test_the_csrf_token_is_stable_for_a_link_and_differs_per_link_and_key() -> None:
    # GIVEN two links
    first, second = new_link_id(KEY, "a@x.io", 1), new_link_id(KEY, "a@x.io", 1)
    # WHEN their CSRF tokens are computed
    # THEN the same link gives the same token; another link or another key does not
    assert csrf_token(KEY, first) == csrf_token(KEY, first)
    assert csrf_token(KEY, first) != csrf_token(KEY, second)
    assert csrf_token(KEY, first) != csrf_token(KEY[::-1], first)
    assert first not in csrf_token(KEY, first)


def test_digest_is_hex_sha256() -> None:
    assert digest("token") == hashlib.sha256(b"token").hexdigest()


def test_the_key_must_be_at_least_32_characters() -> None:
    # GIVEN a secret of 31 characters and one of 32
    # WHEN the key is loaded
    # THEN the short one is a ConfigurationError and the other is its bytes
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_key(FakeSecrets("x" * 31), "arn")
    assert load_key(FakeSecrets("y" * 32), "arn") == b"y" * 32


def test_request_settings_read_the_environment_and_drop_a_trailing_slash() -> None:
    settings = RequestSettings.from_env(REQUEST_ENV)
    assert settings.base_url == "https://abc.execute-api.us-east-1.amazonaws.com"
    assert settings.table == "approvals"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://abc.execute-api.us-east-1.amazonaws.com",
        "https://abc.example.com/?next=evil",
        "https://abc.example.com/#frag",
        "javascript:alert(1)",
    ],
)
def test_request_settings_refuse_a_base_url_that_is_not_plain_https(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="APPROVAL_BASE_URL"):
        RequestSettings.from_env({**REQUEST_ENV, "APPROVAL_BASE_URL": base_url})


def test_request_settings_name_a_missing_setting() -> None:
    with pytest.raises(ConfigurationError, match="NOTIFICATION_TOPIC_ARN"):
        RequestSettings.from_env({k: v for k, v in REQUEST_ENV.items() if "TOPIC" not in k})


def test_api_settings_default_to_link_only_and_sso_needs_an_https_issuer_and_a_client() -> None:
    env = {
        "APPROVAL_TABLE_NAME": "t",
        "APPROVAL_KEY_SECRET_ARN": "arn",
        "APPROVAL_TOKEN_KEY_ARN": "key",
        "PROFILES_FILE": "/opt/profiles.yaml",
    }
    assert ApiSettings.from_env(env).sso_enabled is False
    sso_env = {
        **env,
        "SSO_ISSUER": "https://idp.example.com/",
        "SSO_CLIENT_ID": "certrelay",
        "APPROVAL_BASE_URL": "https://abc.execute-api.us-east-1.amazonaws.com/",
    }
    sso = ApiSettings.from_env(sso_env).sso
    assert sso is not None
    assert sso.issuer == "https://idp.example.com"
    assert sso.redirect_uri == "https://abc.execute-api.us-east-1.amazonaws.com/callback"
    with pytest.raises(ConfigurationError, match="SSO_ISSUER"):
        ApiSettings.from_env({**sso_env, "SSO_ISSUER": "http://idp.example.com"})
    with pytest.raises(ConfigurationError, match="SSO_CLIENT_ID"):
        ApiSettings.from_env({k: v for k, v in sso_env.items() if k != "SSO_CLIENT_ID"})


def test_approval_rejected_is_the_non_retryable_name_the_state_machine_catches() -> None:
    assert ApprovalRejected.__name__ == "ApprovalRejected"
    assert issubclass(ApprovalRejected, CertrelayError)
    assert ApprovalRejected.retryable is False


def test_the_email_says_what_why_where_by_when_and_that_the_link_only_opens_a_page() -> None:
    # GIVEN the facts of a request round
    # WHEN the email for an approver is composed
    subject, body = pages.email(MAIL, link="https://h/approvals/ID", escalation_contact=False)
    # THEN it names the certificate, the profile and target count, the link and the deadline
    assert subject == "[certrelay] Approval needed: distribute www.example.com"
    for text in ("www.example.com", MAIL.arn, "0a:1b", "2026-03-01T12:00:00Z", "'web'"):
        assert text in body
    assert "3 target(s)" in body
    assert "https://h/approvals/ID" in body
    assert "Decide by 2025-01-02 12:00 UTC" in body
    assert "nothing happens until you press Approve or" in body
    assert "You are an approver" in body
    assert MAIL.execution in body


def test_the_email_says_which_change_made_the_policy_ask_a_person() -> None:
    # GIVEN approval: unless-changed asked a person because a name and a target changed
    changed = pages.Mail(**{**MAIL.__dict__, "reasons": ("NamesChanged", "TargetsChanged")})
    # WHEN the approver's email is composed
    _, body = pages.email(changed, link="https://h/a/x", escalation_contact=False)
    # THEN it names each reason code and what it means; a plain human profile adds nothing
    assert "NamesChanged: a name was added or removed since the last distribution." in body
    assert "TargetsChanged: the profile's targets changed." in body
    human = pages.Mail(**{**MAIL.__dict__, "reasons": ("PolicyHuman",)})
    assert (
        "PolicyHuman" not in pages.email(human, link="https://h/a/x", escalation_contact=False)[1]
    )


def test_an_escalation_email_says_so_and_tells_the_contact_why_they_are_asked() -> None:
    escalated = pages.Mail(**{**MAIL.__dict__, "round": "escalation"})
    subject, body = pages.email(escalated, link="https://h/a/x", escalation_contact=True)
    assert subject.startswith("[certrelay] Approval escalated:")
    assert "You are an escalation contact" in body
    assert "escalated" in body


def test_a_hostile_domain_cannot_break_the_subject_or_add_lines_to_the_body() -> None:
    # GIVEN a domain with a newline, non-ASCII and great length
    hostile = pages.Mail(**{**MAIL.__dict__, "domain": "évil\r\nBcc: x@y.z " + "a" * 200})
    # WHEN the email is composed
    subject, body = pages.email(hostile, link="https://h/a/x", escalation_contact=False)
    # THEN the subject is ASCII, one line, at most 99 characters; the body has no injected line
    assert subject.isascii()
    assert len(subject) <= MAX_SUBJECT
    assert not re.search(r"[\x00-\x1f\x7f]", subject)
    assert not any(line.startswith("Bcc:") for line in body.splitlines())


def _facts(**changes: Any) -> pages.Facts:
    base: dict[str, Any] = {
        "approval_id": "R" * 32 + "." + "M" * 22,
        "approver": "web-lead@example.com",
        "round": "request",
        "domain": "www.example.com",
        "arn": MAIL.arn,
        "serial": "0a:1b",
        "not_after": "2026-03-01T12:00:00Z",
        "profile": "web",
        "targets": 3,
        "summary": "Renewed.",
        "deadline": DEADLINE,
        "execution": "arn:aws:states:us-east-1:123456789012:execution:m:run",
        "console_url": "https://us-east-1.console.aws.amazon.com/states/home#/x",
    }
    return pages.Facts(**{**base, **changes})


def test_the_confirmation_page_has_one_form_posting_to_itself_with_two_buttons() -> None:
    page = pages.confirmation(_facts(), csrf="CSRF-TOKEN")
    assert page.count("<form") == 1
    assert f'method="post" action="{"R" * 32}.{"M" * 22}"' in page
    assert '<input type="hidden" name="csrf" value="CSRF-TOKEN">' in page
    assert 'value="approve">Approve</button>' in page
    assert 'value="reject">Reject</button>' in page
    assert f'maxlength="{pages.MAX_REASON_BYTES}"' in page
    assert "2025-01-02 12:00 UTC" in page
    assert "<script" not in page


def test_the_page_escapes_hostile_values() -> None:
    # GIVEN a domain and summary carrying markup
    page = pages.confirmation(
        _facts(domain='<script>alert("x")</script>', summary="<img src=x onerror=alert(1)>"),
        csrf="c",
    )
    # THEN the markup is shown as text, never as tags
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_the_csp_allows_exactly_the_one_stylesheet_on_the_pages() -> None:
    # GIVEN the CSP header and a rendered page
    csp = pages.HEADERS["Content-Security-Policy"]
    page = pages.confirmation(_facts(), csrf="c")
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    expected = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    # THEN its style hash is the page's stylesheet, and nothing else may load, frame or post away
    assert f"style-src 'sha256-{expected}'" in csp
    for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert "script-src" not in csp
    assert ' style="' not in page  # inline style attributes would need 'unsafe-hashes'


def test_the_console_link_is_only_a_link_when_it_is_https() -> None:
    page = pages.confirmation(_facts(console_url="javascript:alert(1)"), csrf="c")
    assert "javascript:" not in page


def test_a_cn_with_crlf_gives_a_clean_subject_and_no_header_or_line_injection() -> None:
    # GIVEN a certificate whose name carries CR/LF, a header and a planted line (checklist SNS-04)
    hostile = "evil\r\nBcc: all@example.com\nExecution: https://evil.example/"
    mail = dataclasses.replace(MAIL, domain=hostile, profile="web\r\nExecution: x")
    # WHEN the approval email is composed
    subject, body = pages.email(mail, link="https://h/approvals/ID", escalation_contact=False)
    # THEN the subject is one ASCII line under 100 characters, with no control characters
    assert subject.isascii()
    assert len(subject) < 100
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in subject)
    # AND no line of the body starts with the planted text, and no CR is left
    lines = body.splitlines()
    assert "\r" not in body
    assert not any(line.lstrip().startswith(("Bcc:", "Execution: https://evil")) for line in lines)
    assert lines[lines.index("Execution") + 1] == "  " + MAIL.execution


def test_nobody_may_decide_for_a_record_without_a_certificate_arn() -> None:
    from certrelay.approvers import current_approvers

    class NoAcm:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"ACM must not be asked ({name})")

    for arn in ("unknown", "", "arn:aws:acm:us-east-1:123456789012:certificate/x\n"):
        assert current_approvers(NoAcm(), {}, arn, "request") == frozenset()  # type: ignore[arg-type]
