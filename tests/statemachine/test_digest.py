"""notify: digest through the whole ASL: routine mails held, the daily digest mails them once.

GIVEN the demo fleet with digest profiles, WHEN routine and action-needed outcomes happen and
the digest schedule fires (twice), THEN routine outcomes reach each owner in one digest mail,
anything that needs the owner is mailed at once, and a second firing mails nothing.
"""

from __future__ import annotations

import boto3

from certrelay.local.engine import LocalEngine
from certrelay.local.fleet.seed import load_fleet
from tests.statemachine.conftest import assert_no_secrets, only_execution, send

SCHEDULE = "DigestFunctionDaily"
HELD = ["Claim Owner Mail", "Deliver Now?", "Hold For Digest", "Owner Mail Held"]
SITE, LEGACY = "site-team@example.com", "legacy-owners@example.com"


def held_lines(engine: LocalEngine) -> list[dict]:
    table = engine.stack.resources["DigestTable"].ref  # type: ignore[union-attr]
    items = boto3.client("dynamodb", region_name=engine.fleet.region).scan(TableName=table)
    return [i for i in items["Items"] if i["pk"]["S"].startswith("held#")]


def digests(engine: LocalEngine) -> list[dict]:
    return [n for n in engine.notifications() if n["attributes"].get("event_kind") == "Digest"]


def _digest_fleet_engine() -> LocalEngine:
    """public-site and legacy-imported join a notify: digest profile of their own owners."""
    fleet = load_fleet()
    assert fleet.profiles is not None
    fleet.profiles["site"] = {"owners": [SITE], "notify": "digest"}
    fleet.profiles["legacy"] = {"owners": [LEGACY], "notify": "digest"}
    fleet.certificates["public-site"].tags["certrelay:profile"] = "site"
    fleet.certificates["legacy-imported"].tags["certrelay:profile"] = "legacy"
    return LocalEngine(fleet=fleet, clock_speed=50)


def test_routine_mail_is_held_for_one_digest_and_action_needed_mail_goes_at_once():
    with _digest_fleet_engine() as engine:
        # WHEN ACM reminds about a certificate it renews itself (routine) ...
        routine = only_execution(send(engine, "approaching-expiration.json", "public-site"))
        # ... and about an imported certificate only its owners can renew (needs action)
        urgent = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))

        # THEN the routine mail is stored for the digest, not published
        assert routine.status == "SUCCEEDED"
        assert routine.output["notify"] == "digest"
        assert routine.output["mail"]["delivery"] == "digest"
        assert routine.states[4:8] == HELD
        assert "Send Email" not in routine.states
        (line,) = held_lines(engine)
        assert line["owner"]["S"] == SITE
        assert line["execution"]["S"] == routine.arn
        assert "www.example.com" in line["summary"]["S"]
        assert "message" not in line, "a held line keeps no mail body"
        # AND the imported certificate's owners are mailed at once, as before
        assert urgent.output["mail"]["delivery"] == "immediate"
        assert "Send Email" in urgent.states
        assert "Hold For Digest" not in urgent.states
        told = [n["recipient"] for n in engine.notifications()]
        assert SITE not in told
        assert LEGACY in told

        # WHEN the daily digest fires
        run = engine.fire_schedule(SCHEDULE)

        # THEN the routine owner gets one digest listing the held outcome, and nobody else
        assert run.error is None, run.answer
        assert run.answer["mailed"] == 1
        (digest,) = digests(engine)
        assert digest["recipient"] == SITE
        assert digest["subject"].startswith("[certrelay] INFORMATIONAL: daily digest for ")
        assert "www.example.com" in digest["body"]
        assert routine.arn in digest["body"], "each line links to its execution"
        assert "pending" not in held_lines(engine)[0], "the line is marked sent"

        # WHEN the schedule fires again (a retry, or by hand) THEN nobody is mailed twice
        again = engine.fire_schedule(SCHEDULE)
        assert again.error is None, again.answer
        assert again.answer["mailed"] == 0
        assert len(digests(engine)) == 1
        # AND the same reminder redelivered holds nothing twice
        resent = only_execution(send(engine, "approaching-expiration.json", "public-site"))
        assert resent.states[-1] == "Already Handled"
        assert len(held_lines(engine)) == 1
        assert_no_secrets(engine, engine.executions)


def test_a_renewal_approved_by_policy_and_distributed_everywhere_reaches_the_digest():
    # GIVEN the web profile approves by policy, reports by digest, and has one bucket target
    fleet = load_fleet()
    assert fleet.profiles is not None
    web = fleet.profiles["web"]
    web.update(approval="auto", notify="digest")
    web["targets"] = [t for t in web["targets"] if t["kind"] == "s3"]
    with LocalEngine(fleet=fleet, clock_speed=50) as engine:
        # WHEN ACM renews the private certificate
        execution = only_execution(send(engine, "available.json", "web-private", Action="RENEWAL"))

        # THEN it is distributed, and neither the notice nor the report is mailed at once
        assert execution.states[-1] == "Renewal Distributed", execution.states
        assert "Approved By Policy" in execution.states
        assert "Hold For Digest" in execution.states
        assert [n for n in engine.notifications() if n["recipient"] == "web-team@example.com"] == []
        kinds = sorted(line["event_kind"]["S"] for line in held_lines(engine))
        assert kinds == ["Available", "DistributionReport"]

        # WHEN the digest fires THEN the owner gets both lines in one mail
        run = engine.fire_schedule(SCHEDULE)
        assert run.error is None, run.answer
        (digest,) = digests(engine)
        assert digest["recipient"] == "web-team@example.com"
        assert "2 routine updates" in digest["subject"]
        assert "distributed to every target" in digest["body"]
        assert_no_secrets(engine, engine.executions)
