"""The certificate rule's event pattern as each organisation mode deploys it."""

from __future__ import annotations

from typing import Any


def certificate_rule_text(rule: dict[str, Any], *, hub: bool = False) -> str:
    """CertificateEventsRule's pattern (its Fn::Sub text) with the account filter that the
    IsHub condition picks: the stack's own account in single mode, none on the hub's bus."""
    text, variables = rule["EventPattern"]["Fn::Sub"]
    _, in_hub, in_single = variables["AccountFilter"]["Fn::If"]
    return str(text).replace("${AccountFilter}", in_hub if hub else in_single["Fn::Sub"])
