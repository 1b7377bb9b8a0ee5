"""Reason codes and severities: what a decision's reasons mean and how urgent its finding is.

certrelay.policy decides with them; the findings and the owners' outcome mail read them without
the event and profile models the decision needs.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """How urgent the decision is; compare with `rank`, not with string order."""

    INFORMATIONAL = "INFORMATIONAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


# Reason codes: the first one a decision carries is its primary reason.
NOT_A_THRESHOLD_DAY = "NotAThresholdDay"  # daily expiry reminder on a day we do not act on
ALREADY_RENEWED = "AlreadyRenewed"  # ACM's NotAfter is past the expiry the event warns about
IMPORTED_EXPIRING = "ImportedExpiring"  # imported certificate nears expiry; ACM cannot renew it
MANAGED_RENEWAL_PENDING = "ManagedRenewalPending"  # eligible ACM certificate; ACM will renew it
MANAGED_RENEWAL_INELIGIBLE = "ManagedRenewalIneligible"  # ACM-issued but ACM will not renew it
RENEWAL_ACTION_REQUIRED = "RenewalActionRequired"  # managed renewal is stuck until someone acts
CERTIFICATE_EXPIRED = "CertificateExpired"  # the certificate is past its NotAfter
CERTIFICATE_REVOKED = "CertificateRevoked"  # the certificate was revoked
CERTIFICATE_ROTATED = "CertificateRotated"  # ACM rotated the certificate
CERTIFICATE_ISSUED = "CertificateIssued"  # a new certificate was issued (Available, ISSUANCE)
CERTIFICATE_RENEWED = "CertificateRenewed"  # ACM renewed the certificate (Available, RENEWAL)
CERTIFICATE_IMPORTED = "CertificateImported"  # a certificate was (re)imported (IMPORT, REIMPORT)
DISTRIBUTION_PENDING = "DistributionPending"  # renewed exportable certificate has targets to feed
# with DistributionPending: the certificate is public (AMAZON_ISSUED) and ACM lets it be exported
EXPORTABLE_PUBLIC_RENEWED = "ExportablePublicRenewed"  # ACM renewed it (Available, RENEWAL)
EXPORTABLE_PUBLIC_ISSUED = "ExportablePublicIssued"  # ACM issued it (Available, ISSUANCE)
CERTIFICATE_NOT_FOUND = "CertificateNotFound"  # ACM no longer has the certificate
OWNER_MISSING = "OwnerMissing"  # no owner tag or profile owners: the fallback owner was told
PROFILE_UNKNOWN = "ProfileUnknown"  # the certrelay:profile tag names no configured profile
EVENT_INCONSISTENT = "EventInconsistent"  # the event's kind contradicts what ACM says now

# Security Hub problems: the first four share their reason code's name; these two are raised
# later in the run ("Raise Distribution Finding", "Raise Export Finding").
DISTRIBUTION_INCOMPLETE = "DistributionIncomplete"  # some targets lack the renewed certificate
EXPORT_REFUSED = "ExportRefused"  # the renewed certificate was refused at export

# The one severity table of Security Hub findings (CertificateExpired: see finding_severity).
FINDING_SEVERITIES: dict[str, Severity] = {
    RENEWAL_ACTION_REQUIRED: Severity.HIGH,
    CERTIFICATE_EXPIRED: Severity.HIGH,
    CERTIFICATE_REVOKED: Severity.CRITICAL,
    DISTRIBUTION_INCOMPLETE: Severity.HIGH,
    EXPORT_REFUSED: Severity.HIGH,
    OWNER_MISSING: Severity.LOW,
}
# How severe the owners' mail about a later outcome of the run is (certrelay.outcomes writes it):
# an incomplete distribution and a refused export are as severe as the findings they raise.
OUTCOME_SEVERITIES: dict[str, Severity] = {
    "distributed": Severity.INFORMATIONAL,
    "distribution_incomplete": FINDING_SEVERITIES[DISTRIBUTION_INCOMPLETE],
    "export_failed": FINDING_SEVERITIES[EXPORT_REFUSED],
    "rejected": Severity.MEDIUM,  # a person decided: nothing is broken, nothing went out
    "expired": Severity.HIGH,  # nobody decided: the old certificate still runs out
}


def finding_severity(problem: str, *, in_use: bool = False) -> Severity:
    """The severity a problem's finding carries; CertificateExpired is CRITICAL only in use."""
    if problem not in FINDING_SEVERITIES:
        raise ValueError(f"unknown problem {problem!r}; known: {', '.join(FINDING_SEVERITIES)}")
    if problem == CERTIFICATE_EXPIRED and in_use:
        return Severity.CRITICAL
    return FINDING_SEVERITIES[problem]
