"""Batch approval through the whole ASL: two executions wait in Request Approval for the same
approver; one POST from the batch page (through real HTTP) approves both, and both go on.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import yaml

from certrelay.local import human
from certrelay.local.engine import LocalEngine
from certrelay.local.fleet.seed import DEFAULT_FLEET, load_fleet
from tests.statemachine.conftest import EVENTS, assert_no_secrets

ITEM = re.compile(r'name="item" value="([0-9a-f]{64})"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def batch_fleet(tmp_path: Path, names: tuple[str, ...]) -> Path:
    """The demo fleet with private certificates `names`, all of profile web, distributed to S3
    only (no server targets, so the approved runs finish quickly)."""
    fleet = yaml.safe_load(DEFAULT_FLEET.read_text(encoding="utf-8"))
    web = fleet["profiles"]["web"]
    web["targets"] = [t for t in web["targets"] if t["kind"] == "s3"]
    fleet["certificates"] = {
        name: {
            "type": "PRIVATE",
            "domain": f"{name}.internal.example.com",
            "days_to_expiry": 30,
            "tags": {"certrelay:owner": "web-team@example.com", "certrelay:profile": "web"},
        }
        for name in names
    }
    fleet["servers"] = {}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet), encoding="utf-8")
    return path


def test_one_batch_post_approves_two_waiting_executions_and_both_continue(tmp_path: Path):
    event = json.loads((EVENTS / "available.json").read_text(encoding="utf-8"))
    names = ("one", "two")
    with LocalEngine(fleet=load_fleet(batch_fleet(tmp_path, names))) as engine:
        # GIVEN two executions waiting in Request Approval for web-lead
        runs = []
        for name in names:
            _, started = engine.put_event(engine.certificate_event(event, name))
            ((execution_name, arn),) = started
            engine.wait_for_state(arn, "Request Approval")
            human.links_when_sent(engine, arn)  # its pending item is recorded by then
            runs.append((execution_name, arn))
        link = human.approval_links(engine, runs[0][1])[0]
        # WHEN the approver opens the batch page from one link and approves both in one POST
        page = human.open_page(link + "/batch")
        assert page.status == 200
        items = ITEM.findall(page.body)
        assert len(items) == 2
        assert {engine.status(arn) for _, arn in runs} == {"RUNNING"}
        fields = [("csrf", CSRF.findall(page.body)[0]), ("decision", "approve")]
        fields += [("reason", "both like for like")] + [("item", ref) for ref in items]
        body = urllib.parse.urlencode(fields).encode()
        answer = human.open_page(link + "/batch", method="POST", data=body)
        executions = [engine.wait(arn, name=name, seconds=60) for name, arn in runs]
        assert_no_secrets(engine, executions)

    # THEN the answer lists both as approved, and each execution went on to distribute
    assert answer.status == 200
    assert answer.body.count(">Approved<") == 2
    for execution in executions:
        assert execution.states.index("Request Approval") < execution.states.index(
            "Export Certificate"
        )
        assert execution.states[-1] == "Renewal Distributed"
        decision = execution.output["approval_decision"]
        assert (decision["approver"], decision["reason"]) == (
            "web-lead@example.com",
            "both like for like",
        )
