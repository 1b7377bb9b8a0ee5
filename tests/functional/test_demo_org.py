"""`certrelay demo --org --json` end to end: a member's renewal distributed in its own account,
an event from outside the organisation refused (issue 12, "Done when")."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from certrelay.cli.main import main
from certrelay.local.org import HUB_ACCOUNT, MEMBER_ACCOUNTS, NON_MEMBER_ACCOUNT, REGIONS

PAY_1 = "i-0b2c3d4e5f6a70001"  # the demo fleet's server in 222222222222, eu-west-1


@pytest.fixture(scope="module")
def org_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict]:
    """`certrelay demo --org --json` once: (exit status, its JSON)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CERTRELAY_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(["demo", "--org", "--json"])
    return status, json.loads(out.getvalue())


def _from(report: dict, account: str) -> list[dict]:
    return [e for e in report["executions"] if e["account"] == account]


def test_demo_org_exits_0_with_both_outcomes_held(org_demo: tuple[int, dict]) -> None:
    # GIVEN the organisation demo WHEN it runs to the end
    status, report = org_demo
    # THEN it says both outcomes held, and exits 0 for that
    assert report["organization"]["outcomes"] == {
        "member renewal distributed": True,
        "non-member event refused": True,
    }
    assert status == 0


def test_demo_org_every_execution_names_its_account_and_region(org_demo: tuple[int, dict]) -> None:
    # GIVEN the organisation demo's JSON
    _, report = org_demo
    # THEN each execution carries the account and Region of the event that started it
    seen = {(e["account"], e["region"]) for e in report["executions"]}
    assert seen == {
        ("222222222222", "eu-west-1"),
        ("333333333333", "us-east-1"),
        (NON_MEMBER_ACCOUNT, "us-east-1"),
    }
    assert report["organization"]["hub"] == {"account": HUB_ACCOUNT, "region": REGIONS[0]}
    stacks = {(s["account"], s["region"]) for s in report["organization"]["member_stacks"]}
    assert stacks == {(a, r) for a in MEMBER_ACCOUNTS for r in REGIONS}


def test_demo_org_the_member_renewal_is_approved_and_installed_in_the_member_account(
    org_demo: tuple[int, dict],
) -> None:
    # GIVEN payments-private, renewed in 222222222222/eu-west-1, profile with server pay-1
    _, report = org_demo
    (execution,) = [e for e in _from(report, "222222222222") if e["region"] == "eu-west-1"]
    # THEN a person approved it, it was exported and distributed, and the install command ran
    # in the member's account and Region with the member stack's own document
    assert execution["status"] == "SUCCEEDED"
    assert "Request Approval" in execution["states"]
    assert "Export Certificate" in execution["states"]
    assert execution["states"][-1] == "Renewal Distributed"
    assert execution["output"]["approval_decision"]["approver"] == "payments-lead@example.com"
    assert report["distributions"]
    assert {d["status"] for d in report["distributions"]} == {"DISTRIBUTED"}
    assert report["organization"]["installs"] == [
        {
            "account": "222222222222",
            "region": "eu-west-1",
            "document": "certrelay-install-certificate",
            "instance": PAY_1,
        }
    ]


def test_demo_org_the_non_member_event_is_refused_reported_and_nothing_exported(
    org_demo: tuple[int, dict],
) -> None:
    # GIVEN an event from 999999999999, outside the organisation, that reached the hub's bus
    _, report = org_demo
    (execution,) = _from(report, NON_MEMBER_ACCOUNT)
    # THEN triage refuses it as foreign, the rejection is reported, nothing is exported
    assert execution["status"] == "FAILED"
    assert execution["error"] == "ForeignEvent"
    assert execution["states"] == ["Triage Event", "Report Rejected Event", "Event Rejected"]
    rejected = [n for n in report["notifications"] if "rejected" in (n["subject"] or "")]
    assert any(NON_MEMBER_ACCOUNT in n["body"] for n in rejected)
