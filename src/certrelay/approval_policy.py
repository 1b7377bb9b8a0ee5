"""Who approves a renewal: a human, or the profile's policy.

`judge` is pure: the caller reads the last distribution on record (certrelay.distribution_record)
and the certificate's current shape, and policy.decide puts the judgement into the plan. The
reason codes appear in the plan, the execution history and the events certrelay sends out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from certrelay.certificates import Certificate

Mode = Literal["human", "auto", "unless-changed"]
MODES: tuple[Mode, ...] = ("human", "auto", "unless-changed")

LIKE_FOR_LIKE = "LikeForLike"  # same names, key, issuer, targets; last run succeeded, verified
FIRST_DISTRIBUTION = "FirstDistribution"  # no verified distribution on record
NAMES_CHANGED = "NamesChanged"  # a name was added or removed (domain or SAN)
KEY_CHANGED = "KeyChanged"  # key algorithm or size
ISSUER_CHANGED = "IssuerChanged"  # another CA issued this serial
TARGETS_CHANGED = "TargetsChanged"  # the profile's targets are not the ones distributed to
LAST_RUN_FAILED = "LastRunFailed"  # the certificate's last run did not succeed
NOT_VERIFIED = "NotVerified"  # the last distribution was not verified everywhere
POLICY_HUMAN = "PolicyHuman"  # the profile says human
POLICY_AUTO = "PolicyAuto"  # the profile says auto

REASONS = (
    LIKE_FOR_LIKE,
    FIRST_DISTRIBUTION,
    NAMES_CHANGED,
    KEY_CHANGED,
    ISSUER_CHANGED,
    TARGETS_CHANGED,
    LAST_RUN_FAILED,
    NOT_VERIFIED,
    POLICY_HUMAN,
    POLICY_AUTO,
)

# Each reason in words, for the approver's mail.
MEANINGS = {
    LIKE_FOR_LIKE: "like-for-like with the last verified distribution",
    FIRST_DISTRIBUTION: "no distribution of this certificate is on record yet",
    NAMES_CHANGED: "a name was added or removed since the last distribution",
    KEY_CHANGED: "the key algorithm or size changed",
    ISSUER_CHANGED: "another CA issued it",
    TARGETS_CHANGED: "the profile's targets changed",
    LAST_RUN_FAILED: "the certificate's last run did not succeed",
    NOT_VERIFIED: "the last distribution was not verified on every target",
    POLICY_HUMAN: "the profile asks a person every time",
    POLICY_AUTO: "the profile approves every renewal",
}


@dataclass(frozen=True)
class Shape:
    """What makes two serials "like for like"."""

    names: frozenset[str]  # domain + SANs, lower-case
    key_algorithm: str  # ACM's KeyAlgorithm, e.g. "RSA_2048", "EC_prime256v1"
    issuer: str  # issuing CA ARN (private) or issuer DN (public)
    targets: frozenset[str]  # target ids "<profile>#<name|n>"


@dataclass(frozen=True)
class LastDistribution:
    """The last distribution on record for a certificate."""

    shape: Shape
    serial: str
    verified: bool  # every target verified
    last_run_succeeded: bool  # the certificate's most recent run ended well


@dataclass(frozen=True)
class ApprovalJudgement:
    approver: Literal["human", "policy"]
    reason: str  # the primary reason code
    reasons: tuple[str, ...]  # every reason that applied, most telling first


def judge(mode: Mode, current: Shape, last: LastDistribution | None) -> ApprovalJudgement:
    """Approve by policy only what the profile allows; say every reason a human is asked."""
    if mode == "human":
        return ApprovalJudgement("human", POLICY_HUMAN, (POLICY_HUMAN,))
    if mode == "auto":
        return ApprovalJudgement("policy", POLICY_AUTO, (POLICY_AUTO,))
    if last is None:
        return ApprovalJudgement("human", FIRST_DISTRIBUTION, (FIRST_DISTRIBUTION,))
    reasons = _changes(current, last.shape)
    if not last.last_run_succeeded:
        reasons.append(LAST_RUN_FAILED)
    if not last.verified:
        reasons.append(NOT_VERIFIED)
    if reasons:
        return ApprovalJudgement("human", reasons[0], tuple(reasons))
    return ApprovalJudgement("policy", LIKE_FOR_LIKE, (LIKE_FOR_LIKE,))


def _changes(current: Shape, previous: Shape) -> list[str]:
    checks = (
        (NAMES_CHANGED, current.names != previous.names),
        (KEY_CHANGED, current.key_algorithm != previous.key_algorithm),
        (ISSUER_CHANGED, current.issuer != previous.issuer),
        (TARGETS_CHANGED, current.targets != previous.targets),
    )
    return [reason for reason, changed in checks if changed]


def current_shape(certificate: Certificate, target_ids: list[str]) -> Shape:
    """The certificate's names (domain and SANs, lower-case), key, issuer and targets now; Record
    Distribution writes the same shape down for the next renewal to be compared with."""
    names = {certificate.domain, *certificate.sans} - {""}
    return Shape(
        names=frozenset(n.lower() for n in names),
        key_algorithm=certificate.key_algorithm,
        issuer=certificate.issuer,
        targets=frozenset(target_ids),
    )
