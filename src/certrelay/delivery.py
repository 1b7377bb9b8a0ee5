"""How an owner mail is delivered: at once, or held for the owner's daily digest.

Routine outcomes (an informational reminder for a certificate ACM renews itself, a renewal
approved by policy and verified everywhere) may wait for the digest when the profile says
`notify: digest`. Anything that needs action, and anything HIGH or CRITICAL, is mailed at once.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Literal

Delivery = Literal["immediate", "digest"]
NotifyMode = Literal["immediate", "digest"]

IMMEDIATE: Delivery = "immediate"
DIGEST: Delivery = "digest"
# severities that are always mailed at once, whatever the profile says
URGENT_SEVERITIES = frozenset({"HIGH", "CRITICAL"})


def delivery(*, notify_mode: NotifyMode, severity: str, needs_action: bool) -> Delivery:
    """Digest only for a routine outcome of a digest profile; else immediate."""
    if notify_mode != "digest" or needs_action or severity.upper() in URGENT_SEVERITIES:
        return IMMEDIATE
    return DIGEST
