"""When an ACM event's kind contradicts what ACM's DescribeCertificate says now.

What each event kind claims, and what ACM's current view contradicts it. "Past" is NotAfter
before now (or status EXPIRED); "revoked" is status REVOKED or a RevokedAt date; "never issued"
is PENDING_VALIDATION, VALIDATION_TIMED_OUT or FAILED.

| event kind                   | contradicted when ACM says now                          |
|------------------------------|---------------------------------------------------------|
| any, with CertificateType    | another Type                                            |
| any                          | never issued (no certificate to speak of)               |
| Approaching Expiration       | past (a NotAfter moved further is AlreadyRenewed: a     |
|                              | stale reminder, not a contradiction)                    |
| Renewal Action Required      | IMPORTED (ACM never renews it), revoked, past           |
| Expired                      | NotAfter still ahead                                    |
| Revoked                      | not revoked: no REVOKED status and no RevokedAt         |
| Rotated                      | revoked, past                                           |
| Available ISSUANCE / RENEWAL | revoked, past, status not ISSUED, IMPORTED              |
| Available IMPORT / REIMPORT  | revoked, past, status not ISSUED, issued by ACM         |

A certificate ACM no longer has is not a contradiction: it is CertificateNotFound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from certrelay.certificates import Certificate
from certrelay.events import AcmEvent, EventKind
from certrelay.text import on, utc_time

NEVER_ISSUED = frozenset({"PENDING_VALIDATION", "VALIDATION_TIMED_OUT", "FAILED"})


def contradicts(event: AcmEvent, cert: Certificate, *, now: datetime) -> str | None:
    """The way the event's kind contradicts ACM's current view of `cert`, or None."""
    claimed_type = event.detail.certificate_type
    if claimed_type is not None and claimed_type != cert.type:
        return f"the event says type {_quoted(claimed_type)}, ACM says {cert.type}"
    if cert.status in NEVER_ISSUED:
        return f"ACM never issued it (status {cert.status})"
    view = _AcmView(
        cert,
        revoked=cert.status == "REVOKED" or cert.revoked_at is not None,
        past=cert.status == "EXPIRED" or (cert.not_after is not None and cert.not_after < now),
    )
    return _BY_KIND[event.kind](event, view)


@dataclass(frozen=True)
class _AcmView:
    """ACM's current view of the certificate, as the table above reads it."""

    cert: Certificate
    revoked: bool
    past: bool

    @property
    def expired_on(self) -> str:
        return f"ACM says it expired{on(self.cert.not_after)}"

    @property
    def revoked_on(self) -> str:
        return f"ACM says it was revoked{on(self.cert.revoked_at)}"

    def ended(self) -> str | None:
        """Revoked or past: the certificate's life is over, whatever the event says."""
        if self.revoked:
            return self.revoked_on
        return self.expired_on if self.past else None


def _approaching(event: AcmEvent, view: _AcmView) -> str | None:
    return view.expired_on if view.past else None


def _renewal_action_required(event: AcmEvent, view: _AcmView) -> str | None:
    if view.cert.type == "IMPORTED":
        return "ACM never renews an imported certificate, so no renewal can need action"
    return view.ended()


def _expired(event: AcmEvent, view: _AcmView) -> str | None:
    if view.past:
        return None
    cert = view.cert
    return f"ACM says it is valid until {utc_time(cert.not_after)} (status {cert.status})"


def _revoked(event: AcmEvent, view: _AcmView) -> str | None:
    if view.revoked:
        return None
    return f"ACM says status {view.cert.status} with no revocation date"


def _rotated(event: AcmEvent, view: _AcmView) -> str | None:
    return view.ended()


def _available(event: AcmEvent, view: _AcmView) -> str | None:
    ended = view.ended()
    if ended is not None:
        return ended
    cert, action = view.cert, event.detail.action
    if cert.status != "ISSUED":
        return f"ACM says status {cert.status}, not ISSUED"
    if action in ("IMPORT", "REIMPORT") and cert.type != "IMPORTED":
        return f"the event says {action}, but ACM issued it ({cert.type})"
    if action in ("ISSUANCE", "RENEWAL") and cert.type == "IMPORTED":
        return f"the event says {action}, but the certificate was imported and ACM never issues it"
    return None


_BY_KIND: dict[EventKind, Callable[[AcmEvent, _AcmView], str | None]] = {
    EventKind.APPROACHING_EXPIRATION: _approaching,
    EventKind.RENEWAL_ACTION_REQUIRED: _renewal_action_required,
    EventKind.EXPIRED: _expired,
    EventKind.REVOKED: _revoked,
    EventKind.ROTATED: _rotated,
    EventKind.AVAILABLE: _available,
}


def _quoted(text: str, limit: int = 40) -> str:
    """An event-supplied string, quoted on one line: it reaches an operator's email."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"
