"""Owner resolution: owner tag first, then the profile's owners, else the fallback owner."""

from __future__ import annotations

import pytest

from certrelay.owners import MAX_OWNERS, OWNER_TAG, PROFILE_TAG, normalize_email, resolve_owners
from certrelay.profiles import Profile

FALLBACK = "ops@example.com"
PROFILES = {
    "web": Profile(owners=["web-team@example.com", "alice@example.com"]),
    "ownerless": Profile(),
}


def test_the_owner_tag_names_the_owners() -> None:
    owners = resolve_owners({OWNER_TAG: "alice@example.com, bob@example.com"}, PROFILES, FALLBACK)
    assert owners.emails == ("alice@example.com", "bob@example.com")
    assert owners.source == "tag"
    assert owners.profile is None
    assert owners.problems == ()


def test_the_profile_tag_brings_the_profiles_owners() -> None:
    owners = resolve_owners({PROFILE_TAG: "web"}, PROFILES, FALLBACK)
    assert owners.emails == ("web-team@example.com", "alice@example.com")
    assert owners.source == "profile"
    assert owners.profile is PROFILES["web"]
    assert owners.profile_name == "web"


def test_tag_and_profile_owners_are_united_tag_first_without_case_duplicates() -> None:
    # GIVEN a tag owner who is also a profile owner, in different case
    tags = {OWNER_TAG: "Carol@example.com,ALICE@example.com", PROFILE_TAG: "web"}
    owners = resolve_owners(tags, PROFILES, FALLBACK)
    # THEN each person appears once, tag owners first
    assert owners.emails == ("Carol@example.com", "ALICE@example.com", "web-team@example.com")
    assert owners.source == "tag+profile"


def test_invalid_tag_addresses_are_dropped_and_reported() -> None:
    owners = resolve_owners({OWNER_TAG: "bob@, alice@example.com,,"}, PROFILES, FALLBACK)
    assert owners.emails == ("alice@example.com",)
    assert owners.problems == (f"tag {OWNER_TAG} has an invalid address 'bob@'",)


def test_an_unknown_profile_is_reported_and_keeps_its_name() -> None:
    owners = resolve_owners(
        {OWNER_TAG: "alice@example.com", PROFILE_TAG: "wbe"}, PROFILES, FALLBACK
    )
    assert owners.emails == ("alice@example.com",)
    assert owners.profile is None
    assert owners.profile_name == "wbe"
    assert owners.profile_unknown
    assert owners.problems == (f"tag {PROFILE_TAG} names unknown profile 'wbe'",)


def test_no_tags_means_the_fallback_owner() -> None:
    owners = resolve_owners({}, PROFILES, FALLBACK)
    assert owners.emails == (FALLBACK,)
    assert owners.source == "fallback"
    assert owners.fallback
    assert owners.problems == ()


def test_only_invalid_addresses_fall_back_and_say_why() -> None:
    owners = resolve_owners({OWNER_TAG: "nobody"}, PROFILES, FALLBACK)
    assert owners.emails == (FALLBACK,)
    assert owners.source == "fallback"
    assert owners.problems == (f"tag {OWNER_TAG} has an invalid address 'nobody'",)


def test_an_empty_owner_tag_is_reported() -> None:
    owners = resolve_owners({OWNER_TAG: " , "}, PROFILES, FALLBACK)
    assert owners.source == "fallback"
    assert owners.problems == (f"tag {OWNER_TAG} is empty",)


def test_a_profile_without_owners_falls_back_but_keeps_the_profile() -> None:
    owners = resolve_owners({PROFILE_TAG: "ownerless"}, PROFILES, FALLBACK)
    assert owners.emails == (FALLBACK,)
    assert owners.source == "fallback"
    assert owners.profile is PROFILES["ownerless"]
    assert not owners.profile_unknown


def test_normalize_email_trims_and_rejects() -> None:
    assert normalize_email("  alice@Example.COM ") == "alice@example.com"
    assert normalize_email("alice@") is None
    assert normalize_email("alice@localhost") is None


@pytest.mark.parametrize(
    ("tag", "allowed", "told", "noted"),
    [
        ("a@evil.com", {"example.com"}, (FALLBACK,), "'a@evil.com' is outside"),
        ("a@evil.com, b@example.com", {"example.com"}, ("b@example.com",), "'a@evil.com'"),
        ("b@mail.example.com", {"example.com"}, ("b@mail.example.com",), None),
        ("b@badexample.com", {"example.com"}, (FALLBACK,), "'b@badexample.com'"),
        ("b@example.com.evil.net", {"example.com"}, (FALLBACK,), "outside"),
        ("a@evil.com", set(), ("a@evil.com",), None),
    ],
)
def test_owners_outside_the_allowed_domains_are_dropped_and_noted(
    tag: str, allowed: set[str], told: tuple[str, ...], noted: str | None
) -> None:
    """GIVEN OwnerEmailDomains WHEN the owner tag names addresses THEN only those in the domains
    (or their subdomains) are told, each dropped one is noted, and nobody left means fallback."""
    owners = resolve_owners(
        {OWNER_TAG: tag}, PROFILES, FALLBACK, allowed_domains=frozenset(allowed)
    )
    assert owners.emails == told
    if noted is None:
        assert not owners.problems
    else:
        assert any(noted in problem for problem in owners.problems)


@pytest.mark.parametrize(
    "tag",
    [
        "a@example.com\r\nBcc: x@example.org",
        "a@example.com\nBcc: x@example.org",
        '"a\r\nb"@example.com',
        "a@exam\rple.com",
    ],
)
def test_an_address_with_a_line_break_is_rejected(tag: str) -> None:
    """GIVEN an owner tag smuggling a header through CR/LF THEN it is no address at all."""
    owners = resolve_owners({OWNER_TAG: tag}, PROFILES, FALLBACK)
    assert owners.emails == (FALLBACK,)
    assert owners.problems


def test_at_most_ten_owners_are_told_and_the_rest_noted() -> None:
    """GIVEN eleven owners in the tag THEN the first ten are told and the cut is noted."""
    tag = ", ".join(f"owner{n}@example.com" for n in range(11))
    owners = resolve_owners({OWNER_TAG: tag}, PROFILES, FALLBACK)
    assert owners.emails == tuple(f"owner{n}@example.com" for n in range(MAX_OWNERS))
    assert MAX_OWNERS == 10
    assert any("11 owners" in problem for problem in owners.problems)
