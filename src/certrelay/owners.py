"""Who owns a certificate: its owner tag, its profile's owners, or the stack's fallback owner.

Problems with the tags (bad addresses, unknown profile) never stop the mail going out; they are
collected as one-line notes so the owners can fix them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from email_validator import EmailNotValidError, validate_email

if TYPE_CHECKING:  # a type only: the functions that check addresses without profiles (request
    # approval) do not import the profile models for it
    from certrelay.profiles import Profile

OWNER_TAG = "certrelay:owner"
PROFILE_TAG = "certrelay:profile"
# Anyone allowed acm:AddTagsToCertificate can name owners: at most this many are told, and with
# OwnerEmailDomains set only addresses in those domains (the rest are dropped and noted).
MAX_OWNERS = 10

OwnerSource = Literal["tag", "profile", "tag+profile", "fallback"]


@dataclass(frozen=True)
class Owners:
    """The addresses to tell, the profile that applies, and how we got there.

    `profile_name` is what the tag says even when no such profile exists (then `profile` is None).
    """

    emails: tuple[str, ...]
    profile: Profile | None
    profile_name: str | None
    source: OwnerSource
    problems: tuple[str, ...] = ()

    @property
    def fallback(self) -> bool:
        return self.source == "fallback"

    @property
    def profile_unknown(self) -> bool:
        return self.profile_name is not None and self.profile is None


def normalize_email(address: str) -> str | None:
    """The address in canonical form, or None when it is not a deliverable-looking address."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def resolve_owners(
    tags: Mapping[str, str],
    profiles: Mapping[str, Profile],
    fallback_email: str,
    *,
    allowed_domains: frozenset[str] = frozenset(),
) -> Owners:
    """Unite the owner tag with the profile's owners; nobody valid means the fallback owner.

    `allowed_domains` (lower case; empty means any) keeps only addresses in those domains or
    their subdomains. At most MAX_OWNERS are told; every address dropped is noted.
    """
    problems: list[str] = []
    tagged: list[str] = []
    raw_owner = tags.get(OWNER_TAG)
    if raw_owner is not None:
        for candidate in (part.strip() for part in raw_owner.split(",")):
            if not candidate:
                continue
            address = normalize_email(candidate)
            if address is None:
                problems.append(f"tag {OWNER_TAG} has an invalid address {_show(candidate)}")
            else:
                tagged.append(address)
        if not tagged and not problems:
            problems.append(f"tag {OWNER_TAG} is empty")

    profile_name = tags.get(PROFILE_TAG, "").strip() or None
    profile = profiles.get(profile_name) if profile_name else None
    if profile_name and profile is None:
        problems.append(f"tag {PROFILE_TAG} names unknown profile {_show(profile_name)}")
    from_profile = [str(owner) for owner in profile.owners] if profile else []

    emails = _capped(
        _allowed(_unique([*tagged, *from_profile]), allowed_domains, problems), problems
    )
    if not emails:
        return Owners(
            emails=(fallback_email,),
            profile=profile,
            profile_name=profile_name,
            source="fallback",
            problems=tuple(problems),
        )
    source: OwnerSource = (
        "tag+profile" if tagged and from_profile else "tag" if tagged else "profile"
    )
    return Owners(
        emails=emails,
        profile=profile,
        profile_name=profile_name,
        source=source,
        problems=tuple(problems),
    )


def in_domains(address: str, domains: frozenset[str]) -> bool:
    """Whether the address's domain is one of `domains` or a subdomain of one (empty: any)."""
    if not domains:
        return True
    domain = address.rpartition("@")[2].lower()
    return any(domain == allowed or domain.endswith("." + allowed) for allowed in domains)


def _allowed(
    addresses: tuple[str, ...], domains: frozenset[str], problems: list[str]
) -> tuple[str, ...]:
    kept = tuple(address for address in addresses if in_domains(address, domains))
    for address in addresses:
        if address not in kept:
            problems.append(f"owner {_show(address)} is outside the allowed email domains")
    return kept


def _capped(addresses: tuple[str, ...], problems: list[str]) -> tuple[str, ...]:
    if len(addresses) > MAX_OWNERS:
        problems.append(f"{len(addresses)} owners named; only the first {MAX_OWNERS} are told")
    return addresses[:MAX_OWNERS]


def _unique(addresses: Iterable[str]) -> tuple[str, ...]:
    """First occurrence wins; addresses compare case-insensitively."""
    seen: set[str] = set()
    kept: list[str] = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            kept.append(address)
    return tuple(kept)


def _show(value: str, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
