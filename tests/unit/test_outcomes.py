"""Who rejected a renewal, as the certrelay.rejected event tells it."""

from __future__ import annotations

import json

import pytest

from certrelay.mail import MAX_QUOTED_LINES, inline, quoted
from certrelay.outcomes import EXPORT_FAILED, REJECTED, compose_outcome, rejection

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:certrelay:run-1"


def test_the_approval_functions_cause_gives_who_when_and_why():
    cause = {"approver": "lead@example.com", "decided_at": "2026-11-27T09:00:00Z", "reason": "x"}

    facts = rejection({"error": {"Error": "ApprovalRejected", "Cause": json.dumps(cause)}})

    assert facts == cause


def test_a_missing_reason_is_empty_not_the_word_none():
    cause = {"approver": "web-lead@example.com", "decided_at": "2026-11-27T09:00:00Z"}

    facts = rejection({"error": {"Cause": json.dumps(cause)}})

    assert facts["reason"] == ""


def test_a_cause_that_is_not_json_is_kept_as_the_reason():
    facts = rejection({"error": {"Cause": "rejected by hand"}})

    assert facts == {"approver": "unknown", "decided_at": "unknown", "reason": "rejected by hand"}


def _rejected(reason: str, approver: str = "lead@example.com", domain: str = "www.example.com"):
    cause = {"approver": approver, "decided_at": "2026-11-27T09:00:00Z", "reason": reason}
    decision = {
        "certificate": {
            "arn": "arn:aws:acm:us-east-1:123456789012:certificate/x",
            "domain": domain,
        },
        "owners": ["web-team@example.com"],
        "error": {"Error": "ApprovalRejected", "Cause": json.dumps(cause)},
    }
    (message,) = compose_outcome(REJECTED, decision, execution_arn=EXECUTION)
    return message


@pytest.mark.parametrize(
    "reason",
    [
        "not now\nExecution: https://evil.example/",
        "not now\r\nExecution: https://evil.example/",
        "not now\rExecution: https://evil.example/",
        "\x1b\x00\nExecution: https://evil.example/\x7f",
    ],
)
def test_a_planted_line_in_the_reason_stays_inside_the_quote_block(reason: str):
    # GIVEN a rejection whose reason carries a line that imitates ours
    # WHEN the owners' mail is composed
    body = _rejected(reason)["message"]
    lines = body.splitlines()
    # THEN the planted line is quoted, never at the start of a line of its own
    assert "> Execution: https://evil.example/" in lines
    assert all("evil.example" not in line or line.startswith("> ") for line in lines)
    assert not any(line.startswith("Execution:") for line in lines)
    # AND no control character of the reason survives
    assert not any(ch in body for ch in "\r\x1b\x00")
    # AND our own execution line still points at the real execution
    assert lines[lines.index("Execution") + 1].strip().startswith("https://us-east-1.console")


def test_hostile_approver_and_domain_cannot_break_the_subject_or_add_lines():
    # GIVEN a cause with a hostile approver and a certificate with a hostile name
    message = _rejected(
        "x", approver="a@example.com\nExecution: https://evil/", domain="evil\r\nBcc:"
    )
    # THEN the subject is one short line and the body gained no line starting with a planted word
    assert "\n" not in message["subject"]
    assert "\r" not in message["subject"]
    assert len(message["subject"]) < 100
    lines = message["message"].splitlines()
    assert not any(line.startswith(("Execution: https://evil", "Bcc:")) for line in lines)


def test_an_export_failures_cause_is_quoted_too():
    decision = {
        "certificate": {"domain": "www.example.com"},
        "owners": ["web-team@example.com"],
        "error": {"Error": "KeyMismatch", "Cause": "bad\nExecution: https://evil.example/"},
    }
    (message,) = compose_outcome(EXPORT_FAILED, decision, execution_arn=EXECUTION)
    lines = message["message"].splitlines()
    assert "> Execution: https://evil.example/" in lines
    assert not any(line.startswith("Execution:") for line in lines)


def test_a_quote_block_is_capped_and_an_empty_one_says_none():
    assert quoted("") == ["> (none)"]
    assert quoted("  \n\n") == ["> (none)"]
    long = quoted("line\n" * 500)
    assert len(long) == MAX_QUOTED_LINES + 1
    assert long[-1] == "> [cut short]"
    assert all(line.startswith("> ") for line in quoted("x" * 10_000))
    assert len("".join(quoted("x" * 10_000))) < 2100


def test_an_inline_value_loses_newlines_and_is_capped():
    assert inline("evil\r\nBcc: x") == "evilBcc: x"
    assert len(inline("y" * 1000)) == 300
