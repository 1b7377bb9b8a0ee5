"""Approval policies: who approves a renewal, and every reason why, one reason per test."""

from __future__ import annotations

from dataclasses import replace

import pytest

from certrelay import approval_policy as ap
from certrelay.approval_policy import LastDistribution, Shape, judge

CA = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/11111111-2222"
SHAPE = Shape(
    names=frozenset({"api.example.com", "www.example.com"}),
    key_algorithm="RSA_2048",
    issuer=CA,
    targets=frozenset({"web#partner", "web#2"}),
)
GOOD_LAST = LastDistribution(shape=SHAPE, serial="0a:01", verified=True, last_run_succeeded=True)


def test_the_reason_codes_are_distinct_strings() -> None:
    assert len(set(ap.REASONS)) == len(ap.REASONS) == 10


def test_a_human_profile_always_asks_a_human_even_when_like_for_like() -> None:
    # GIVEN approval: human and a like-for-like renewal
    # WHEN judged
    judgement = judge("human", SHAPE, GOOD_LAST)
    # THEN a human approves, because the profile says so
    assert (judgement.approver, judgement.reason, judgement.reasons) == (
        "human",
        ap.POLICY_HUMAN,
        (ap.POLICY_HUMAN,),
    )


def test_an_auto_profile_is_approved_by_policy_even_for_a_first_distribution() -> None:
    judgement = judge("auto", SHAPE, None)

    assert (judgement.approver, judgement.reason, judgement.reasons) == (
        "policy",
        ap.POLICY_AUTO,
        (ap.POLICY_AUTO,),
    )


def test_unless_changed_approves_a_like_for_like_renewal_by_policy() -> None:
    # GIVEN the last distribution was verified, its run succeeded, and nothing changed
    # WHEN the next serial is judged under unless-changed
    judgement = judge("unless-changed", SHAPE, replace(GOOD_LAST, serial="0a:02"))
    # THEN the policy approves it
    assert (judgement.approver, judgement.reason, judgement.reasons) == (
        "policy",
        ap.LIKE_FOR_LIKE,
        (ap.LIKE_FOR_LIKE,),
    )


def test_unless_changed_asks_a_human_for_a_first_distribution() -> None:
    judgement = judge("unless-changed", SHAPE, None)

    assert (judgement.approver, judgement.reason, judgement.reasons) == (
        "human",
        ap.FIRST_DISTRIBUTION,
        (ap.FIRST_DISTRIBUTION,),
    )


def test_unless_changed_asks_a_human_when_a_name_is_added() -> None:
    current = replace(SHAPE, names=SHAPE.names | {"new.example.com"})

    judgement = judge("unless-changed", current, GOOD_LAST)

    assert (judgement.approver, judgement.reasons) == ("human", (ap.NAMES_CHANGED,))


def test_unless_changed_asks_a_human_when_a_name_is_removed() -> None:
    current = replace(SHAPE, names=frozenset({"api.example.com"}))

    assert judge("unless-changed", current, GOOD_LAST).reason == ap.NAMES_CHANGED


@pytest.mark.parametrize("algorithm", ["RSA_4096", "EC_prime256v1"])
def test_unless_changed_asks_a_human_when_the_key_algorithm_or_size_changes(
    algorithm: str,
) -> None:
    judgement = judge("unless-changed", replace(SHAPE, key_algorithm=algorithm), GOOD_LAST)

    assert (judgement.approver, judgement.reasons) == ("human", (ap.KEY_CHANGED,))


def test_unless_changed_asks_a_human_when_another_ca_issued_the_certificate() -> None:
    current = replace(SHAPE, issuer=CA.replace("11111111", "99999999"))

    judgement = judge("unless-changed", current, GOOD_LAST)

    assert (judgement.approver, judgement.reasons) == ("human", (ap.ISSUER_CHANGED,))


def test_unless_changed_asks_a_human_when_the_targets_changed() -> None:
    current = replace(SHAPE, targets=SHAPE.targets | {"web#3"})

    judgement = judge("unless-changed", current, GOOD_LAST)

    assert (judgement.approver, judgement.reasons) == ("human", (ap.TARGETS_CHANGED,))


def test_unless_changed_asks_a_human_when_the_last_run_failed() -> None:
    last = replace(GOOD_LAST, last_run_succeeded=False)

    judgement = judge("unless-changed", SHAPE, last)

    assert (judgement.approver, judgement.reasons) == ("human", (ap.LAST_RUN_FAILED,))


def test_unless_changed_asks_a_human_when_the_last_distribution_was_not_verified() -> None:
    last = replace(GOOD_LAST, verified=False)

    judgement = judge("unless-changed", SHAPE, last)

    assert (judgement.approver, judgement.reasons) == ("human", (ap.NOT_VERIFIED,))


def test_every_applicable_reason_is_given_with_the_first_change_as_the_primary_one() -> None:
    # GIVEN a new name, a new target, and a last run that failed unverified
    current = replace(
        SHAPE, names=SHAPE.names | {"new.example.com"}, targets=frozenset({"web#partner"})
    )
    last = replace(GOOD_LAST, verified=False, last_run_succeeded=False)
    # WHEN judged
    judgement = judge("unless-changed", current, last)
    # THEN each reason is listed, the name change first
    assert judgement.approver == "human"
    assert judgement.reason == ap.NAMES_CHANGED
    assert judgement.reasons == (
        ap.NAMES_CHANGED,
        ap.TARGETS_CHANGED,
        ap.LAST_RUN_FAILED,
        ap.NOT_VERIFIED,
    )
