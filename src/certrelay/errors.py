"""Domain errors. Each class name is the `ErrorEquals` name the state machine catches.

A Lambda handler that raises one of these surfaces as `errorType` = the class name, so the ASL
can route on it. `retryable` says whether the state machine's Retry lists the name.
"""

from __future__ import annotations


class CertrelayError(Exception):
    """Base class: a failure certrelay understands and reports in one line."""

    retryable = False


class MalformedEvent(CertrelayError):
    """The event is not a well-formed ACM EventBridge event; retrying cannot help."""


class UnsupportedEvent(CertrelayError):
    """The event is well-formed but of a detail-type certrelay does not handle."""


class ProfileError(CertrelayError):
    """The distribution profiles file is invalid (reported at load time, never mid-run)."""


class ConfigurationError(CertrelayError):
    """The function's environment is missing or has an invalid setting."""


class ServiceThrottled(CertrelayError):
    """An AWS API throttled or failed transiently; the state machine retries with backoff."""

    retryable = True


# STS's and Organizations' "slow down" codes, raised as ServiceThrottled by certrelay.accounts
# (assuming a member's role) and certrelay.membership (listing the organisation's accounts).
STS_AND_ORGANIZATIONS_THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException"}
)


class ApprovalRejected(CertrelayError):
    """An approver rejected the distribution; sent as SendTaskFailure's `error`, never retried."""


class InvalidApprovalRequest(CertrelayError):
    """The "Request Approval" payload lacks a token, a round or approvers; retrying cannot help."""


class InvalidExportRequest(CertrelayError):
    """The "Export Certificate" payload names no valid ACM certificate ARN; retrying cannot help."""


class ExportRefused(CertrelayError):
    """ACM's certificate cannot be exported now: not exportable, not issued, expired or revoked."""


class ExportMismatch(CertrelayError):
    """What ExportCertificate returned disagrees with ACM's description; nothing was written."""


class ForeignEvent(CertrelayError):
    """The event or its certificate belongs to another account, region or partition; not retried."""


class MemberRoleUnavailable(CertrelayError):
    """The hub could not assume the member account's certrelay role (missing, or its trust or
    external id refuses the hub): nothing was done in that account; reported, not retried."""


class RegionNotEnabled(CertrelayError):
    """The certificate's Region is not enabled for the member account (or the hub): STS or the
    service refuses the credentials there; reported, not retried."""


class MembershipUnavailable(CertrelayError):
    """A hub could not read its organisation's accounts (OrganizationAccountsRoleArn refused,
    missing or failing): an account outside MemberAccountIds is not admitted; not retried."""


class ProfileMismatch(CertrelayError):
    """The payload's profile is not the certificate's `certrelay:profile` tag, or that profile
    is not deployed or has no targets: nothing is exported or distributed."""


class TargetNotInProfile(CertrelayError):
    """A target id (or its kind) the certificate's deployed profile does not hold: no action."""


class BundleNotFound(CertrelayError):
    """No complete bundle in the stack's bucket for the certificate and ACM's current serial."""


class ExportCapReached(CertrelayError):
    """The profile's `exports_per_day` is used up for this UTC day: nothing was exported; the
    owners and operations are told, and a redelivered event tries again."""


class UnknownState(CertrelayError):
    """The payload's `state` is not in the invoked function's routing table; not retried."""
