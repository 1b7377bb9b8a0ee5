"""A synthetic fleet's year (or ten) of renewals, run through certrelay's own decisions.

`simulate` is pure (no I/O, no clock, no moto): a fast clock walks each certificate's life in
whole UTC days. What is decided is decided by the code the deployed stack runs:

- every ACM event (Approaching Expiration on a threshold day, Available RENEWAL) is parsed by
  `certrelay.events.parse_event` and decided by `certrelay.policy.decide` (route, severity);
- who approves is `certrelay.approval_policy.judge` against the certificate's last distribution;
- how each owner mail goes out (at once, or in the daily digest) is `certrelay.delivery.delivery`
  with the `notify` of the certificate's `certrelay.profiles.Profile`.

What the fleet does is synthetic and seeded (docs/renewal-cadence.md states every assumption):
ACM renews a certificate `renew_before_days` before it expires; names and profile targets change
at calendar rates; a distribution run fails at a per-run rate, and its owner sends the event
again the next day. Each certificate starts with its current serial distributed and verified.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from certrelay import policy, reasons
from certrelay.approval_policy import LastDistribution, Mode, Shape, judge
from certrelay.certificates import Certificate
from certrelay.delivery import DIGEST, NotifyMode, delivery
from certrelay.events import AcmEvent, parse_event
from certrelay.owners import Owners
from certrelay.profiles import Profile
from certrelay.reminders import APPROACHING_EXPIRATION_DETAIL_TYPE, DEFAULT_THRESHOLDS

# ACM renews a managed private certificate 60 days before it expires (ACM User Guide, "Private
# certificate renewal"). For lifetimes where that would be before a third of the certificate's
# life has passed, it renews with a third of the lifetime left (assumption, as cert-manager's
# default renewBefore and Let's Encrypt's renewal advice), at least one day before expiry.
ACM_RENEW_BEFORE_DAYS = 60
DEFAULT_SEED = 13
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
ACCOUNT = "123456789012"
REGION = "us-east-1"
KEY_ALGORITHM = "RSA_2048"
ISSUER = (
    f"arn:aws:acm-pca:{REGION}:{ACCOUNT}:certificate-authority/00000000-0000-4000-8000-0000000000ca"
)
MAX_CERTIFICATES = 10_000
MAX_DAYS = 3650


@dataclass(frozen=True)
class Rates:
    """How often a renewal is not like-for-like (docs/renewal-cadence.md justifies each)."""

    names_changed_per_year: float = 0.25  # per certificate: a name added at its next renewal
    targets_changed_per_year: float = 0.25  # per certificate's profile: a target added
    run_failure: float = 0.01  # per distribution run: a target not installed


@dataclass(frozen=True)
class Scenario:
    """What to simulate: N certificates over M owners (round-robin), each its own profile."""

    certificates: int
    owners: int
    lifetime_days: int
    days: int
    policy: Mode = "unless-changed"
    notify: NotifyMode = "digest"
    seed: int = DEFAULT_SEED
    rates: Rates = field(default_factory=Rates)
    thresholds: frozenset[int] = DEFAULT_THRESHOLDS
    start: datetime = DEFAULT_START

    def problems(self) -> list[str]:
        """What makes the scenario impossible to run, one line each."""
        checks = (
            (
                not 1 <= self.certificates <= MAX_CERTIFICATES,
                f"--certificates must be 1 to {MAX_CERTIFICATES}",
            ),
            (
                not 1 <= self.owners <= self.certificates,
                "--owners must be 1 to the number of certificates",
            ),
            (not 2 <= self.lifetime_days <= MAX_DAYS, f"--lifetime-days must be 2 to {MAX_DAYS}"),
            (not 1 <= self.days <= MAX_DAYS, f"--days must be 1 to {MAX_DAYS}"),
            (
                min(self.rates.names_changed_per_year, self.rates.targets_changed_per_year) < 0,
                "change rates must not be negative",
            ),
            (
                not 0 <= self.rates.run_failure < 1,
                "the run failure rate must be at least 0 and below 1",
            ),
        )
        return [message for failed, message in checks if failed]


def renew_before_days(lifetime_days: int) -> int:
    """Days before expiry that ACM renews: 60, or a third of a short lifetime (at least 1)."""
    return max(1, min(ACM_RENEW_BEFORE_DAYS, lifetime_days // 3))


def renewal_interval(lifetime_days: int) -> int:
    """Days between two renewals of one certificate."""
    return lifetime_days - renew_before_days(lifetime_days)


@dataclass
class OwnerTally:
    """One owner's mailbox and approvals; an owner is also the approver of their profiles."""

    owner: str
    certificates: int = 0
    human_approvals: int = 0
    policy_approvals: int = 0
    exports: int = 0
    renewals: int = 0
    distributed: int = 0
    not_distributed: int = 0
    retrying_at_end: int = 0
    failed_runs: int = 0
    immediate: Counter[int] = field(default_factory=Counter)  # day -> emails mailed at once
    action_needed: Counter[int] = field(default_factory=Counter)  # day -> of those, needing action
    digest_days: set[int] = field(default_factory=set)  # days a digest goes out
    held_at_end: int = 0  # digest items held on the last day (their digest is after the period)
    reasons: Counter[str] = field(default_factory=Counter)  # why a human was asked

    def mail(self, day: int, how: str, *, needs_action: bool) -> None:
        """A mail sent on `day`; for a digest item, `day` is the day its digest goes out."""
        if how == DIGEST:
            self.digest_days.add(day)
            return
        self.immediate[day] += 1
        self.action_needed[day] += int(needs_action)

    def emails_on(self, day: int) -> int:
        return self.immediate[day] + (day in self.digest_days)

    def other_emails_on(self, day: int) -> int:
        """Emails that day apart from action-needed ones (the digest included)."""
        return self.emails_on(day) - self.action_needed[day]

    def days(self) -> set[int]:
        """The days this owner got at least one email."""
        return {d for d, n in self.immediate.items() if n} | self.digest_days

    def row(self) -> dict[str, Any]:
        """The owner's row of `certrelay simulate --json` (its keys are an API)."""
        days = self.days()
        return {
            "owner": self.owner,
            "certificates": self.certificates,
            "emails": sum(self.immediate.values()) + len(self.digest_days),
            "digests": len(self.digest_days),
            "human_approvals": self.human_approvals,
            "policy_approvals": self.policy_approvals,
            "exports": self.exports,
            "max_emails_per_day": max((self.emails_on(d) for d in days), default=0),
        }


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    owners: tuple[OwnerTally, ...]

    def as_json(self) -> dict[str, Any]:
        """`{"owners": [...], "summary": {...}}`: per owner rows, then the fleet's totals."""
        return {"owners": [t.row() for t in self.owners], "summary": self.summary()}

    def summary(self) -> dict[str, Any]:
        s, owners = self.scenario, self.owners
        reasons: Counter[str] = Counter()
        for tally in owners:
            reasons.update(tally.reasons)
        other = (t.other_emails_on(d) for t in owners for d in t.days())
        return {
            "policy": s.policy,
            "notify": s.notify,
            "seed": s.seed,
            "days": s.days,
            "lifetime_days": s.lifetime_days,
            "renewal_every_days": renewal_interval(s.lifetime_days),
            "rates": {
                "names_changed_per_year": s.rates.names_changed_per_year,
                "targets_changed_per_year": s.rates.targets_changed_per_year,
                "run_failure": s.rates.run_failure,
            },
            "renewals": sum(t.renewals for t in owners),
            "distributed": sum(t.distributed for t in owners),
            "not_distributed": sum(t.not_distributed for t in owners),
            "retrying_at_end": sum(t.retrying_at_end for t in owners),
            "failed_runs": sum(t.failed_runs for t in owners),
            "digest_items_held_at_end": sum(t.held_at_end for t in owners),
            "action_needed_emails": sum(sum(t.action_needed.values()) for t in owners),
            "max_other_emails_per_day": max(other, default=0),
            "days_over_one_other_email": sum(
                1 for t in owners for d in t.days() if t.other_emails_on(d) > 1
            ),
            "human_approval_reasons": dict(sorted(reasons.items())),
        }


def simulate(scenario: Scenario) -> Result:
    """Run every certificate's days through the policy; tallies per owner, in owner order."""
    problems = scenario.problems()
    if problems:
        raise ValueError(problems[0])
    tallies = tuple(OwnerTally(owner_email(i)) for i in range(scenario.owners))
    for index in range(scenario.certificates):
        tally = tallies[index % scenario.owners]
        tally.certificates += 1
        _Certificate(scenario, index, tally).live()
    return Result(scenario, tallies)


def owner_email(index: int) -> str:
    return f"owner{index + 1}@example.com"


class _Certificate:
    """One certificate's life: its serials, reminders, renewals and the runs distributing them."""

    def __init__(self, scenario: Scenario, index: int, tally: OwnerTally) -> None:
        self.s, self.index, self.tally = scenario, index, tally
        self.arn = (
            f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/00000000-0000-4000-8000-{index:012d}"
        )
        self.domain = f"svc{index + 1}.example.internal"
        self.profile_name = f"svc{index + 1}"
        self.names = frozenset({self.domain})
        self.profile = _profile(tally.owner, scenario.notify, targets=2)
        interval = renewal_interval(scenario.lifetime_days)
        age = _rng(scenario, index, "stagger").randrange(interval)  # steady state: days since issue
        self.issued, self.serial = -age, 1
        self.failures = _rng(scenario, index, "failures")
        self.name_changes = _arrivals(
            scenario, index, "names", scenario.rates.names_changed_per_year
        )
        self.target_changes = _arrivals(
            scenario, index, "targets", scenario.rates.targets_changed_per_year
        )
        self.next_name_change, self.next_target_change = (
            next(self.name_changes),
            next(self.target_changes),
        )
        # day 0: the current serial is already distributed everywhere and verified
        self.last = LastDistribution(self._shape(), self._serial(), True, True)

    def live(self) -> None:
        interval = renewal_interval(self.s.lifetime_days)
        while self.issued < self.s.days:
            renewal = self.issued + interval
            self._reminders(until=min(renewal, self.s.days))
            if renewal >= self.s.days:
                return
            self._renew(renewal)

    # --- ACM's reminders --------------------------------------------------------------------

    def _reminders(self, *, until: int) -> None:
        """Approaching Expiration on each threshold day the rule lets through, for this serial."""
        expiry = self.issued + self.s.lifetime_days
        for days_left in sorted(self.s.thresholds, reverse=True):
            day = expiry - days_left
            if max(self.issued, 0) <= day < until:
                self._remind(day, days_left)

    def _remind(self, day: int, days_left: int) -> None:
        event = self._event(
            APPROACHING_EXPIRATION_DETAIL_TYPE,
            day,
            {
                "DaysToExpiry": days_left,
                "CertificateExpirationDate": _iso(self._at(day + days_left)),
            },
        )
        decision = policy.decide(
            event, self._acm(), self._owners(), now=self._at(day, 12), thresholds=self.s.thresholds
        )
        if decision.route != policy.ROUTE_IGNORE:
            # routine (spec §2): an informational reminder for a certificate ACM renews itself
            routine = decision.reason == reasons.MANAGED_RENEWAL_PENDING
            self._mail(day, decision.severity.value, needs_action=not routine)

    # --- a renewal and its runs ---------------------------------------------------------------

    def _renew(self, day: int) -> None:
        """ACM renews (a new serial, carrying any name added since); the Available event runs."""
        self._add_names(day)
        self.issued, self.serial = day, self.serial + 1
        self.tally.renewals += 1
        event = self._event("ACM Certificate Available", day, {"Action": "RENEWAL"})
        decision = policy.decide(
            event, self._acm(), self._owners(), now=self._at(day, 1), thresholds=self.s.thresholds
        )
        if decision.route != policy.ROUTE_DISTRIBUTE:
            self.tally.not_distributed += 1
            return
        # Notify Owners: "ready to distribute" (informational); a re-sent event does not repeat it
        self._mail(day, decision.severity.value, needs_action=False)
        self.tally.exports += 1  # one export per certificate and serial (a re-sent event reuses it)
        expiry_of_previous = day + renew_before_days(self.s.lifetime_days)
        for run_day in range(day, expiry_of_previous):
            if run_day >= self.s.days:
                self.tally.retrying_at_end += 1
                return
            self._add_targets(run_day)
            if self._run(run_day):
                self.tally.distributed += 1
                return
        self.tally.not_distributed += 1  # the previous serial expired before a run succeeded

    def _run(self, day: int) -> bool:
        """One run of the distribute route: approval, distribution, the owners' report."""
        shape = self._shape()
        judgement = judge(self.s.policy, shape, self.last)
        if judgement.approver == "human":
            self.tally.human_approvals += 1
            self.tally.reasons[judgement.reason] += 1
            self._mail(day, reasons.Severity.INFORMATIONAL.value, needs_action=True)  # the link
        else:
            self.tally.policy_approvals += 1
        if self.failures.random() < self.s.rates.run_failure:
            self.tally.failed_runs += 1
            self.last = replace(self.last, last_run_succeeded=False)
            self._mail(
                day, reasons.OUTCOME_SEVERITIES["distribution_incomplete"].value, needs_action=True
            )
            return False
        self.last = LastDistribution(shape, self._serial(), verified=True, last_run_succeeded=True)
        # A report of success is routine whoever approved it (outcomes.report_delivery).
        severity = reasons.OUTCOME_SEVERITIES["distributed"].value
        self._mail(day, severity, needs_action=False)
        return True

    def _add_targets(self, day: int) -> None:
        """Targets added to the profile by `day` (each one a new target id)."""
        while self.next_target_change <= day:
            targets = len(self.profile.targets) + 1
            self.profile = _profile(self.tally.owner, self.s.notify, targets=targets)
            self.next_target_change = next(self.target_changes)

    def _add_names(self, day: int) -> None:
        """Names asked for since the last serial: the one ACM issues on `day` carries one more."""
        if self.next_name_change > day:
            return
        self.names = self.names | {f"alt{len(self.names)}.{self.domain}"}
        while self.next_name_change <= day:
            self.next_name_change = next(self.name_changes)

    # --- what ACM and the profiles say --------------------------------------------------------

    def _mail(self, day: int, severity: str, *, needs_action: bool) -> None:
        """One owner mail, at once or into the day's digest as certrelay.delivery says."""
        how = delivery(
            notify_mode=self.profile.notify, severity=severity, needs_action=needs_action
        )
        if how == DIGEST:
            # The digest goes out each morning (DigestSchedule, 07:00 UTC by default) with what
            # was held since; the fleet's events happen later in the day: tomorrow's digest.
            day += 1
            if day >= self.s.days:
                self.tally.held_at_end += 1
                return
        self.tally.mail(day, how, needs_action=needs_action)

    def _shape(self) -> Shape:
        targets = frozenset(
            target_id for target_id, _ in self.profile.target_ids(self.profile_name)
        )
        return Shape(self.names, KEY_ALGORITHM, ISSUER, targets)

    def _serial(self) -> str:
        return f"{self.index:08x}{self.serial:08x}"

    def _owners(self) -> Owners:
        return Owners((self.tally.owner,), self.profile, self.profile_name, "profile")

    def _acm(self) -> Certificate:
        """DescribeCertificate as ACM answers it now: the current serial."""
        return Certificate(
            arn=self.arn,
            domain=self.domain,
            sans=tuple(sorted(self.names)),
            type="PRIVATE",
            status="ISSUED",
            serial=self._serial(),
            not_before=self._at(self.issued),
            not_after=self._at(self.issued + self.s.lifetime_days),
            in_use=False,
            renewal_eligibility="ELIGIBLE",
            exportable=True,
        )

    def _event(self, detail_type: str, day: int, detail: dict[str, Any]) -> AcmEvent:
        raw = {
            "version": "0",
            "id": f"sim-{self.index}-{day}-{detail_type}",
            "detail-type": detail_type,
            "source": "aws.acm",
            "account": ACCOUNT,
            "time": _iso(self._at(day)),
            "region": REGION,
            "resources": [self.arn],
            "detail": {"CertificateType": "PRIVATE", "CommonName": self.domain, **detail},
        }
        return parse_event(raw)

    def _at(self, day: int, hour: int = 0) -> datetime:
        return self.s.start + timedelta(days=day, hours=hour)


def _profile(owner: str, notify: NotifyMode, *, targets: int) -> Profile:
    """The certificate's profile: its owner approves; S3 targets stand for any kind.

    Its `notify` and target ids are read; the approval mode given to `judge` is the scenario's.
    """
    return Profile.model_validate(
        {
            "owners": [owner],
            "approvers": [owner],
            "notify": notify,
            "targets": [
                {"kind": "s3", "name": f"t{n}", "bucket": f"bundles-{n}"}
                for n in range(1, targets + 1)
            ],
        }
    )


def _rng(scenario: Scenario, index: int, purpose: str) -> random.Random:
    """One seeded stream per certificate and purpose: changing one rate moves nothing else."""
    # a seeded, reproducible synthetic fleet: nothing secret is drawn from it
    return random.Random(f"{scenario.seed}/{index}/{purpose}")  # noqa: S311


def _arrivals(scenario: Scenario, index: int, purpose: str, per_year: float) -> Iterator[int]:
    """Days on which a change happens: a Poisson process at `per_year` (never, at 0)."""
    rng, day = _rng(scenario, index, purpose), 0.0
    while per_year > 0:
        day += rng.expovariate(per_year / 365)
        yield int(day)
    while True:
        yield MAX_DAYS * 10


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
