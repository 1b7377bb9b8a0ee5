"""The renewal simulator: a seeded synthetic fleet through policy.decide, judge and delivery."""

from __future__ import annotations

import json

import pytest

from certrelay.simulation import (
    OwnerTally,
    Rates,
    Scenario,
    renew_before_days,
    renewal_interval,
    simulate,
)

NO_CHANGES = Rates(names_changed_per_year=0, targets_changed_per_year=0, run_failure=0)
ROW_KEYS = {
    "owner",
    "certificates",
    "emails",
    "digests",
    "human_approvals",
    "policy_approvals",
    "exports",
    "max_emails_per_day",
}


def issue_fleet(**changes: object) -> Scenario:
    """The issue's target fleet: one owner, 25 certificates, 47-day lifetime, 365 days."""
    fields: dict[str, object] = {
        "certificates": 25,
        "owners": 1,
        "lifetime_days": 47,
        "days": 365,
        **changes,
    }
    return Scenario(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lifetime", "before", "interval"),
    [(395, 60, 335), (198, 60, 138), (180, 60, 120), (100, 33, 67), (47, 15, 32), (2, 1, 1)],
)
def test_acm_renews_60_days_ahead_or_with_a_third_of_a_short_lifetime_left(
    lifetime: int, before: int, interval: int
) -> None:
    # GIVEN a certificate lifetime WHEN ACM's renewal day is computed THEN 60 days, or a third
    assert renew_before_days(lifetime) == before
    assert renewal_interval(lifetime) == interval


def test_the_same_seed_gives_the_same_figures_and_another_seed_other_ones() -> None:
    # GIVEN one scenario WHEN it is simulated twice, and once with another seed
    first = simulate(issue_fleet()).as_json()
    again = simulate(issue_fleet()).as_json()
    other = simulate(issue_fleet(seed=14)).as_json()
    # THEN the figures repeat exactly, and another seed draws other change days
    assert json.dumps(first) == json.dumps(again)
    assert other["summary"]["human_approval_reasons"] != first["summary"]["human_approval_reasons"]


def test_a_like_for_like_fleet_never_asks_a_human_and_mails_at_most_one_digest_a_day() -> None:
    # GIVEN a steady fleet (each serial already distributed) where nothing ever changes
    result = simulate(issue_fleet(rates=NO_CHANGES))
    row, summary = result.as_json()["owners"][0], result.summary()
    # THEN the policy approves every renewal, each is exported once and distributed
    assert row["human_approvals"] == 0
    assert row["policy_approvals"] == summary["renewals"] == row["exports"] > 250
    assert summary["distributed"] == summary["renewals"]
    # AND every mail is routine: one digest on the days with news, nothing else
    assert summary["action_needed_emails"] == 0
    assert row["emails"] == row["digests"]
    assert row["max_emails_per_day"] == 1


def test_a_fleet_whose_every_renewal_adds_a_name_asks_a_human_every_time() -> None:
    # GIVEN names asked for every day, no other change and no failure
    rates = Rates(names_changed_per_year=365 * 4, targets_changed_per_year=0, run_failure=0)
    result = simulate(issue_fleet(rates=rates))
    row, summary = result.as_json()["owners"][0], result.summary()
    # THEN every renewal is approved by a human, because its names changed
    assert row["policy_approvals"] == 0
    assert row["human_approvals"] == summary["renewals"] > 250
    assert summary["human_approval_reasons"] == {"NamesChanged": summary["renewals"]}


def test_a_failed_run_is_sent_again_the_next_day_and_asks_a_human_because_it_failed() -> None:
    # GIVEN runs that fail half the time, and no other change
    rates = Rates(names_changed_per_year=0, targets_changed_per_year=0, run_failure=0.5)
    summary = simulate(issue_fleet(rates=rates)).summary()
    # THEN each failed run's retry asks a human for LastRunFailed, and only for that
    assert summary["failed_runs"] > 50
    reasons = summary["human_approval_reasons"]
    assert set(reasons) == {"LastRunFailed"}
    unretried = summary["not_distributed"] + summary["retrying_at_end"]
    assert summary["failed_runs"] - unretried <= reasons["LastRunFailed"] <= summary["failed_runs"]
    # AND nearly every renewal still lands before the previous serial expires
    total = summary["distributed"] + summary["not_distributed"] + summary["retrying_at_end"]
    assert total == summary["renewals"]
    assert summary["distributed"] >= 0.98 * summary["renewals"]


def test_the_human_policy_asks_for_every_run_and_mails_at_once() -> None:
    # GIVEN the same fleet with approval: human and notify: immediate
    result = simulate(issue_fleet(policy="human", notify="immediate"))
    row, summary = result.as_json()["owners"][0], result.summary()
    # THEN every run (renewals and retries) asks a human, and no digest is sent
    assert row["human_approvals"] == summary["renewals"] + summary["failed_runs"]
    assert set(summary["human_approval_reasons"]) == {"PolicyHuman"}
    assert row["policy_approvals"] == 0
    assert row["digests"] == 0


def test_digest_items_of_one_owner_and_day_make_one_email() -> None:
    # GIVEN an owner with three routine items and one action on one day, one item the next
    tally = OwnerTally("o@example.com")
    for _ in range(3):
        tally.mail(10, "digest", needs_action=False)
    tally.mail(10, "immediate", needs_action=True)
    tally.mail(11, "digest", needs_action=False)
    row = tally.row()
    # THEN each day with items sends one digest, counted as one email on that day
    assert (row["digests"], row["emails"], row["max_emails_per_day"]) == (2, 3, 2)
    assert tally.other_emails_on(10) == 1


def test_a_fleet_of_digests_mails_one_digest_per_owner_and_day_at_most() -> None:
    # GIVEN two owners sharing 40 certificates at a 47-day lifetime
    result = simulate(Scenario(certificates=40, owners=2, lifetime_days=47, days=60))
    for tally in result.owners:
        row = tally.row()
        # THEN no owner gets more digests than days, and each digest day counts once
        assert 0 < row["digests"] == len(tally.digest_days) <= 60
        assert row["certificates"] == 20


def test_the_json_rows_have_exactly_the_issues_keys() -> None:
    # GIVEN three owners WHEN simulated THEN each row has the issue's keys, nothing else
    data = simulate(Scenario(certificates=7, owners=3, lifetime_days=30, days=90)).as_json()
    assert set(data) == {"owners", "summary"}
    assert [set(row) for row in data["owners"]] == [ROW_KEYS] * 3
    assert [row["certificates"] for row in data["owners"]] == [3, 2, 2]  # round-robin


@pytest.mark.parametrize(
    "bad",
    [
        {"certificates": 0},
        {"owners": 0},
        {"owners": 26},
        {"lifetime_days": 1},
        {"days": 3651},
        {"rates": Rates(run_failure=1.0)},
        {"rates": Rates(names_changed_per_year=-1)},
    ],
)
def test_an_impossible_scenario_is_refused(bad: dict[str, object]) -> None:
    # GIVEN a scenario with one impossible value THEN it names the problem and does not run
    scenario = issue_fleet(**bad)
    assert scenario.problems()
    with pytest.raises(ValueError, match=scenario.problems()[0]):
        simulate(scenario)


# The issue's targets (issue 13): one owner, 25 certificates, 47 days, 365 days, unless-changed.
# A functional property of the policy, measured with the default change rates; the figures are
# in docs/renewal-cadence.md.


def test_issue_fleet_distributes_every_renewal_and_asks_a_human_only_for_a_change() -> None:
    summary = simulate(issue_fleet()).summary()
    # THEN every renewal is distributed
    assert summary["distributed"] == summary["renewals"] > 250
    # AND a human is asked only for a reason that is a change, never for a like-for-like renewal
    assert set(summary["human_approval_reasons"]) <= {
        "NamesChanged",
        "TargetsChanged",
        "LastRunFailed",
    }


def test_issue_fleet_without_changes_meets_the_approval_and_mail_targets() -> None:
    result = simulate(issue_fleet(rates=NO_CHANGES))
    row, summary = result.as_json()["owners"][0], result.summary()
    assert row["human_approvals"] <= 12
    assert summary["max_other_emails_per_day"] <= 1
    assert summary["distributed"] == summary["renewals"]


def test_issue_fleet_routine_mail_is_one_digest_a_day_at_the_default_change_rates() -> None:
    # GIVEN the default change rates (a person's approved renewal is reported in the digest too)
    summary = simulate(issue_fleet()).summary()
    # THEN apart from action-needed mail an owner gets at most one email (the digest) a day
    assert summary["max_other_emails_per_day"] <= 1
