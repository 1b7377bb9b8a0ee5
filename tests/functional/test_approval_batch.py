"""The batch approval page against moto: one page lists an approver's own pending renewals (GET
changes nothing), one CSRF-bound POST decides a selection, each item on its own."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from certrelay.approval_batch import MAX_ITEMS
from certrelay.approval_links import RequestSettings, csrf_token, digest, load_key
from certrelay.approval_requests import request_approval
from functions.approval import app as approval_app
from tests.functional.approval_fixtures import (
    APPROVER,
    KEY,
    REGION,
    SECOND,
    Aws,
    audits,
    aws,
    call,
    csrf_of,
    finished,
    http,
    item,
    links,
    mails,
    request,
    table,
    triage_output,
    waiting_execution,
)
from tests.functional.test_approval_api import CountingSfn, post, secure

__all__ = ["aws"]  # the fixture, imported for pytest

ITEM = re.compile(r'name="item" value="([0-9a-f]{64})"')


@dataclasses.dataclass(frozen=True)
class Waiting:
    execution: str
    link: str  # the first approver's link id, from their mail
    domain: str
    others: dict[str, str]  # every recipient's link id

    @property
    def ref(self) -> str:
        return digest(self.link)


def waiting(aws: Aws, domain: str, approvers: list[str] | None = None) -> Waiting:
    """An execution waiting in Request Approval for `domain`, and the first approver's link."""
    execution, token = waiting_execution(aws)
    request(token, execution, domain=domain, approvers=approvers)
    sent = links(mails(aws))
    return Waiting(execution, sent[(approvers or [APPROVER])[0]], domain, sent)


def three(aws: Aws) -> list[Waiting]:
    return [waiting(aws, f"{name}.example.com") for name in ("alpha", "bravo", "charlie")]


def batch_path(link: str) -> str:
    return f"/approvals/{link}/batch"


def open_batch(link: str, method: str = "GET", **kw: Any) -> dict[str, Any]:
    return secure(call(http(method, link, path=batch_path(link), **kw)))


def post_batch(
    link: str,
    refs: list[str],
    decision: str = "approve",
    *,
    reason: str = "",
    csrf: str | None = None,
    extra: list[tuple[str, str]] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Open the batch page (unless a CSRF token is given), tick `refs`, press a button."""
    if csrf is None:
        csrf = csrf_of(open_batch(link, email=kw.get("email"))["body"])
    fields = [("csrf", csrf), ("decision", decision), ("reason", reason)]
    fields += [("item", ref) for ref in refs] + (extra or [])
    return secure(call(http("POST", link, body=urlencode(fields), path=batch_path(link), **kw)))


def status(aws: Aws, execution: str) -> str:
    return str(aws.sfn.describe_execution(executionArn=execution)["status"])


def rows(page: str) -> dict[str, str]:
    """The result page's table: domain -> result word."""
    found = re.findall(r"<tr><td>([^<]*)</td><td class=\"(?:ok|no)\">([^<]*)</td>", page)
    return dict(found)


@pytest.fixture
def spy(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> CountingSfn:
    counting = CountingSfn(aws.sfn)
    deps = dataclasses.replace(approval_app._dependencies(), sfn=counting)
    monkeypatch.setattr(approval_app, "_dependencies", lambda: deps)
    return counting


def test_the_batch_page_lists_only_the_approvers_own_pending_unexpired_renewals(aws: Aws) -> None:
    # GIVEN three renewals waiting for the approver, one for somebody else, one the approver
    # decided already, and one whose deadline passed
    mine = three(aws)
    theirs = waiting(aws, "theirs.example.com", approvers=[SECOND])
    decided = waiting(aws, "decided.example.com")
    assert post(decided.link)["statusCode"] == 200
    by_colleague = waiting(aws, "colleague.example.com", approvers=[APPROVER, SECOND])
    assert post(by_colleague.others[SECOND])["statusCode"] == 200
    settings = RequestSettings.from_env(os.environ)
    execution, token = waiting_execution(aws)
    request_approval(
        {
            "token": token,
            "execution": execution,
            "round": "request",
            "decision": triage_output(domain="late.example.com"),
        },
        dynamodb=aws.dynamodb,
        sns=boto3.client("sns", region_name=REGION),
        kms=boto3.client("kms", region_name=REGION),
        key=load_key(boto3.client("secretsmanager"), settings.key_secret_arn),
        settings=settings,
        now=datetime.now(UTC) - timedelta(hours=2),
    )
    mails(aws)
    before = table(aws)
    # WHEN the approver opens the batch page from one of their links (GET, then HEAD)
    answer = open_batch(mine[1].link)
    head = open_batch(mine[1].link, method="HEAD")
    # THEN it lists exactly their three pending renewals, one checkbox each, none ticked
    page = answer["body"]
    assert answer["statusCode"] == 200
    assert sorted(ITEM.findall(page)) == sorted(w.ref for w in mine)
    for waiting_one in mine:
        assert waiting_one.domain in page
    absent_ones = ("theirs", "decided", "colleague", "late")
    for absent in (f"{name}.example.com" for name in absent_ones):
        assert absent not in page
    assert "checked" not in page
    assert page.count("<form") == 1
    assert "(this link)" in page
    # AND no link id, no other approver, no token on it
    for secret in (*(w.link for w in mine), theirs.link, theirs.ref, SECOND, "token"):
        assert secret not in page
    # AND nothing changed, nothing was told
    assert head["statusCode"] == 200
    assert head["body"] == ""
    assert table(aws) == before
    assert [status(aws, w.execution) for w in (*mine, theirs)] == ["RUNNING"] * 4


def test_the_single_page_points_to_the_batch_page_when_more_wait(aws: Aws) -> None:
    # GIVEN three renewals waiting for the approver
    mine = three(aws)
    before = table(aws)
    # WHEN one link is opened
    page = secure(call(http("GET", mine[0].link)))["body"]
    # THEN its page says two others wait and links to the batch page; nothing changed
    assert "2 other pending renewal(s)" in page
    assert f'href="{mine[0].link}/batch"' in page
    assert table(aws) == before


def test_approving_two_of_three_decides_audits_and_answers_each_and_leaves_the_third(
    aws: Aws, spy: CountingSfn
) -> None:
    # GIVEN three renewals waiting for the approver
    mine = three(aws)
    # WHEN they tick two on the batch page and approve them with one reason
    answer = post_batch(
        mine[2].link, [mine[0].ref, mine[1].ref], reason="CHG-7", source_ip="203.0.113.9"
    )
    # THEN the result page says each was approved
    assert answer["statusCode"] == 200
    assert rows(answer["body"]) == {mine[0].domain: "Approved", mine[1].domain: "Approved"}
    # AND each execution was answered on its own with the approver and the reason
    assert spy.calls == 2
    for chosen in mine[:2]:
        described = finished(aws, chosen.execution)
        assert described["status"] == "SUCCEEDED"
        output = json.loads(described["output"])
        assert (output["decision"], output["approver"], output["reason"]) == (
            "approve",
            APPROVER,
            "CHG-7",
        )
        # AND each has its own audit items: the decision (via the batch, naming the link that
        # opened it, from where) and the callback result
        decided, callback = audits(aws, chosen.link)
        assert (decided["event"], decided["via"]) == ("decided", "batch")
        assert decided["opened_with"] == "approval#" + mine[2].ref
        assert decided["source_ip"] == "203.0.113.9"
        assert decided["execution"] == chosen.execution
        assert (callback["callback"], callback["attempt"]) == ("DELIVERED", decided["pk"])
        assert item(aws, "approval#" + chosen.ref)["status"] == "DECIDED"
    # AND the third still waits, untouched
    assert status(aws, mine[2].execution) == "RUNNING"
    assert item(aws, "approval#" + mine[2].ref)["status"] == "PENDING"
    assert audits(aws, mine[2].link) == []
    # AND the page now lists only the third
    assert ITEM.findall(open_batch(mine[2].link)["body"]) == [mine[2].ref]


def test_rejecting_a_selection_fails_each_execution_with_approval_rejected(aws: Aws) -> None:
    # GIVEN three renewals waiting for the approver
    mine = three(aws)
    # WHEN they reject two of them
    answer = post_batch(mine[0].link, [mine[0].ref, mine[2].ref], "reject", reason="wrong CA")
    # THEN both executions fail with ApprovalRejected; the other still waits
    assert rows(answer["body"]) == {mine[0].domain: "Rejected", mine[2].domain: "Rejected"}
    for chosen in (mine[0], mine[2]):
        described = finished(aws, chosen.execution)
        assert (described["status"], described["error"]) == ("FAILED", "ApprovalRejected")
        decided = audits(aws, chosen.link)[0]
        assert (decided["decision"], decided["reason"]) == ("reject", "wrong CA")
    assert status(aws, mine[1].execution) == "RUNNING"


def test_an_item_decided_meanwhile_is_reported_and_the_others_proceed(
    aws: Aws, spy: CountingSfn
) -> None:
    # GIVEN the batch page open, and then one renewal decided by a colleague on its own link
    both = [APPROVER, SECOND]
    mine = [waiting(aws, f"{name}.example.com", approvers=both) for name in ("one", "two")]
    csrf = csrf_of(open_batch(mine[0].link)["body"])
    execution = mine[1].execution
    assert post(mine[1].others[SECOND], reason="mine")["statusCode"] == 200
    assert finished(aws, execution)["status"] == "SUCCEEDED"
    calls_before = spy.calls
    # WHEN the approver approves both from the page they had open
    answer = post_batch(mine[0].link, [mine[0].ref, mine[1].ref], csrf=csrf)
    # THEN "one" is approved; "two" says who decided it, and nothing about it changed
    assert rows(answer["body"]) == {
        "one.example.com": "Approved",
        "two.example.com": "Already decided",
    }
    assert f"{SECOND} approved it at" in answer["body"]
    assert finished(aws, mine[0].execution)["status"] == "SUCCEEDED"
    assert spy.calls == calls_before + 1
    assert json.loads(finished(aws, execution)["output"])["approver"] == SECOND
    assert audits(aws, mine[1].link) == []


def test_an_item_the_workflow_no_longer_waits_for_does_not_stop_the_others(
    aws: Aws, spy: CountingSfn
) -> None:
    # GIVEN three renewals, the first of which Step Functions will call gone
    mine = three(aws)
    spy.fail_with = "TaskDoesNotExist"
    # WHEN all three are approved in one POST
    answer = post_batch(mine[0].link, [w.ref for w in mine])
    # THEN the first is reported too late (recorded, closed), the other two are approved
    assert rows(answer["body"]) == {
        mine[0].domain: "Too late",
        mine[1].domain: "Approved",
        mine[2].domain: "Approved",
    }
    assert item(aws, "approval#" + mine[0].ref)["status"] == "EXPIRED"
    assert [a["callback"] for a in audits(aws, mine[0].link) if a["event"] == "callback"] == [
        "EXPIRED"
    ]
    for approved in mine[1:]:
        assert finished(aws, approved.execution)["status"] == "SUCCEEDED"
    assert spy.calls == 3


def test_another_approvers_item_in_the_post_is_not_found_and_untouched(aws: Aws) -> None:
    # GIVEN a renewal of the approver's and one waiting only for somebody else
    mine = waiting(aws, "mine.example.com")
    theirs = waiting(aws, "theirs.example.com", approvers=[SECOND])
    unknown = digest("no-such-link")
    # WHEN the approver's batch POST names the other's renewal, and an unknown one
    answer = post_batch(mine.link, [theirs.ref, unknown, mine.ref])
    # THEN both are "Not found" without a word about them; the approver's own is approved
    assert answer["statusCode"] == 200
    assert "theirs.example.com" not in answer["body"]
    assert answer["body"].count("Not found") == 2
    assert "Approved" in answer["body"]
    assert finished(aws, mine.execution)["status"] == "SUCCEEDED"
    assert status(aws, theirs.execution) == "RUNNING"
    assert item(aws, "approval#" + theirs.ref)["status"] == "PENDING"
    assert audits(aws, theirs.link) == []


@pytest.mark.parametrize("csrf", ["", "forged", "single-page", "another-link"])
def test_a_batch_post_without_the_batch_pages_csrf_token_is_refused(aws: Aws, csrf: str) -> None:
    # GIVEN two renewals waiting for the approver
    mine = [waiting(aws, f"{name}.example.com") for name in ("one", "two")]
    tokens = {
        "single-page": csrf_token(KEY.encode(), mine[0].link),  # the single page's own token
        "another-link": csrf_of(open_batch(mine[1].link)["body"]),  # another link's batch page
    }
    before = table(aws)
    # WHEN a form without the batch page's token for this link is posted
    answer = post_batch(mine[0].link, [w.ref for w in mine], csrf=tokens.get(csrf, csrf))
    # THEN 403, and nothing changed anywhere
    assert answer["statusCode"] == 403
    assert table(aws) == before
    assert [status(aws, w.execution) for w in mine] == ["RUNNING", "RUNNING"]


def bad_forms(refs: list[str]) -> dict[str, list[tuple[str, str]]]:
    return {
        "no item": [("decision", "approve")],
        "unknown field": [("decision", "approve"), ("item", refs[0]), ("action", "approve")],
        "two decisions": [("decision", "approve"), ("decision", "reject"), ("item", refs[0])],
        "bad decision": [("decision", "maybe"), ("item", refs[0])],
        "same item twice": [("decision", "approve"), ("item", refs[0]), ("item", refs[0])],
        "not a reference": [("decision", "approve"), ("item", refs[0][:-1] + "G")],
        "a link id": [("decision", "approve"), ("item", "x" * 55)],
        "long reason": [("decision", "approve"), ("item", refs[0]), ("reason", "r" * 1025)],
        "too many": [("decision", "approve")]
        + [("item", digest(str(n))) for n in range(MAX_ITEMS + 1)],
    }


@pytest.mark.parametrize("case", sorted(bad_forms(["0" * 64])))
def test_a_batch_form_that_is_not_a_selection_and_one_decision_is_a_400(
    aws: Aws, case: str
) -> None:
    # GIVEN a renewal waiting for the approver and its batch page's token
    mine = waiting(aws, "one.example.com")
    csrf = csrf_of(open_batch(mine.link)["body"])
    before = table(aws)
    # WHEN a malformed form is posted with the right token
    fields = [("csrf", csrf), *bad_forms([mine.ref])[case]]
    answer = secure(
        call(http("POST", mine.link, body=urlencode(fields), path=batch_path(mine.link)))
    )
    # THEN 400 and nothing changed
    assert answer["statusCode"] == 400
    assert table(aws) == before
    assert status(aws, mine.execution) == "RUNNING"


def test_a_decided_link_still_opens_the_rest_but_an_expired_or_forged_one_does_not(
    aws: Aws,
) -> None:
    # GIVEN two renewals, the first decided through its own link
    mine = [waiting(aws, f"{name}.example.com") for name in ("one", "two")]
    assert post(mine[0].link)["statusCode"] == 200
    # WHEN the decided link opens the batch page
    page = open_batch(mine[0].link)["body"]
    # THEN it lists the other, which can still be decided from there
    assert ITEM.findall(page) == [mine[1].ref]
    assert rows(post_batch(mine[0].link, [mine[1].ref])["body"]) == {"two.example.com": "Approved"}
    # AND a forged link is the uniform 404
    forged = mine[1].link[:-1] + ("A" if mine[1].link[-1] != "A" else "B")
    assert open_batch(forged)["statusCode"] == 404


def test_with_sso_only_the_signed_in_approver_sees_and_decides_the_batch(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SSO mode and two renewals waiting for the approver
    monkeypatch.setenv("SSO_ISSUER", "https://idp.example.com")
    monkeypatch.setenv("SSO_CLIENT_ID", "certrelay")
    approval_app._dependencies.cache_clear()
    mine = [waiting(aws, f"{name}.example.com") for name in ("one", "two")]
    before = table(aws)
    # WHEN somebody else, signed in, opens the approver's batch page, or posts its form
    stranger = open_batch(mine[0].link, email=SECOND)
    page = open_batch(mine[0].link, email=APPROVER)["body"]
    posted = post_batch(mine[0].link, [mine[1].ref], csrf=csrf_of(page), email=SECOND)
    # THEN 403 each time and nothing changed
    assert (stranger["statusCode"], posted["statusCode"]) == (403, 403)
    assert "one.example.com" not in stranger["body"]
    assert table(aws) == before
    # AND the approver, signed in, decides both; the audit says SSO and the batch
    answer = post_batch(mine[0].link, [w.ref for w in mine], email=APPROVER)
    assert set(rows(answer["body"]).values()) == {"Approved"}
    for chosen in mine:
        assert finished(aws, chosen.execution)["status"] == "SUCCEEDED"
        decided = audits(aws, chosen.link)[0]
        assert (decided["authenticated_by"], decided["via"]) == ("sso", "batch")


def test_a_scanner_fetching_the_batch_page_with_a_decision_in_the_query_decides_nothing(
    aws: Aws,
) -> None:
    # GIVEN two renewals waiting for the approver
    mine = [waiting(aws, f"{name}.example.com") for name in ("one", "two")]
    csrf = csrf_of(open_batch(mine[0].link)["body"])
    before = table(aws)
    # WHEN the batch URL is fetched (GET and HEAD) with a whole decision in the query string
    query = f"csrf={csrf}&decision=approve&item={mine[0].ref}&item={mine[1].ref}"
    answers = [open_batch(mine[0].link, method=m, query=query) for m in ("GET", "HEAD")]
    # THEN only the page is shown; nothing changed, nothing was told
    assert [a["statusCode"] for a in answers] == [200, 200]
    assert table(aws) == before
    assert [status(aws, w.execution) for w in mine] == ["RUNNING", "RUNNING"]


def test_no_log_line_of_the_batch_path_holds_a_link_csrf_or_task_token(
    aws: Aws, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """APR-12 for the batch page: GET, the deciding POST and a replay, at DEBUG."""
    for wire in ("botocore", "urllib3"):
        caplog.set_level(logging.INFO, logger=wire)
    caplog.set_level(logging.DEBUG, logger=approval_app.logger.name)
    # GIVEN two renewals waiting for the approver, and their task tokens
    tokens, mine = [], []
    for name in ("one", "two"):
        execution, token = waiting_execution(aws)
        request(token, execution, domain=f"{name}.example.com")
        tokens.append(token)
        mine.append(Waiting(execution, links(mails(aws))[APPROVER], name, {}))
    capfd.readouterr()
    # WHEN the approver opens the batch page, approves both, and the form is replayed
    csrf = csrf_of(open_batch(mine[0].link)["body"])
    refs = [w.ref for w in mine]
    first = post_batch(mine[0].link, refs, csrf=csrf)
    replay = post_batch(mine[0].link, refs, csrf=csrf)
    # THEN both answered, the replay deciding nothing
    assert first["body"].count(">Approved<") == 2
    assert replay["body"].count(">Already decided<") == 2
    # AND no log holds a link id (or either part), the CSRF token or a task token
    records = json.dumps([vars(r) for r in caplog.records], default=str)
    written = capfd.readouterr()
    logs = records + caplog.text + written.out + written.err
    assert "batch_decided" in logs  # the handler's own lines were captured
    secrets = {"CSRF token": csrf}
    for n, waiting_one in enumerate(mine):
        random_part, mac = waiting_one.link.split(".")
        secrets |= {f"link {n}": waiting_one.link, f"its random part {n}": random_part}
        secrets |= {f"its MAC {n}": mac, f"task token {n}": tokens[n]}
    for name, secret in secrets.items():
        assert secret not in logs, f"the {name} was logged"


def test_the_batch_page_lists_at_most_fifty_renewals_soonest_deadline_first(aws: Aws) -> None:
    # GIVEN 51 renewals waiting for the approver (the last asked with the longest deadline)
    for n in range(MAX_ITEMS + 1):
        execution = f"arn:aws:states:us-east-1:123456789012:execution:m:run-{n}"
        request(f"token-{n}", execution, domain=f"n{n}.example.com", timeout_seconds=3600 + n)
    sent = links(mails(aws))
    # WHEN the approver opens the batch page
    page = open_batch(sent[APPROVER])["body"]
    # THEN it lists the first 50 by deadline, each once
    assert len(ITEM.findall(page)) == len(set(ITEM.findall(page))) == MAX_ITEMS
    assert f"{MAX_ITEMS} renewal(s) wait" in page
    assert "n0.example.com" in page
    assert f"n{MAX_ITEMS}.example.com" not in page
