"""Who may decide an approval now: re-read when deciding, never taken from the request's snapshot.

The certificate's profile tag is read from ACM at decision time and the profile from the deployed
profiles, so an approver removed from the profile, or a certificate moved to another profile,
cannot decide a request that was mailed before the change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from certrelay.certificates import read_certificate
from certrelay.owners import PROFILE_TAG, normalize_email
from certrelay.profiles import Profile

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient

    from certrelay.accounts import Sessions

_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")


def current_approvers(
    acm: ACMClient, profiles: Mapping[str, Profile], certificate_arn: str, round_: str
) -> frozenset[str]:
    """The lower-cased addresses the certificate's profile names now for this round.

    Approvers always; escalation contacts in the escalation round. Nobody when ACM no longer has
    the certificate or its tag names no deployed profile.
    """
    genuine = _ACM_ARN.fullmatch(certificate_arn) is not None
    certificate = read_certificate(acm, certificate_arn) if genuine else None
    if certificate is None:
        return frozenset()
    profile = profiles.get(certificate.tags.get(PROFILE_TAG, "").strip())
    if profile is None:
        return frozenset()
    named = [*profile.approvers, *(profile.escalation if round_ == "escalation" else [])]
    found = (normalize_email(str(address)) for address in named)
    return frozenset(address.lower() for address in found if address)


def approvers_reader(
    acm: ACMClient, profiles: Mapping[str, Profile], sessions: Sessions | None
) -> Callable[[str, str], frozenset[str]]:
    """`current_approvers` with the certificate read where it is: through `acm` (the function's
    own client) at home and in single mode, through a hub member's read role elsewhere."""
    from certrelay.accounts import clients_for

    def read(certificate_arn: str, round_: str) -> frozenset[str]:
        at = clients_for(certificate_arn, "read", sessions=sessions, own=lambda _: acm)
        return current_approvers(at("acm"), profiles, certificate_arn, round_)

    return read
