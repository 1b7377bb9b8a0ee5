"""The CLI contract (DESIGN.md §9): --json shape, and bad input as one line on stderr, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.functional.cli_helpers import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_output_has_the_contract_keys_and_the_path_taken(capsys):
    status, out, _ = run(
        capsys, "local", "run", str(EVENTS / "expired.json"), "--cert", "expired-imported", "--json"
    )

    assert status == 0
    report = json.loads(out)
    assert set(report) == {
        "executions",
        "notifications",
        "findings",
        "events_out",
        "metrics",
        "distributions",
    }
    (execution,) = report["executions"]
    assert set(execution) == {"name", "status", "states", "output"}
    assert execution["status"] == "SUCCEEDED"
    assert execution["states"][-1] == "Owners Alerted"
    (email,) = report["notifications"]
    assert set(email) == {"subject", "body", "recipient", "attributes"}
    assert email["recipient"] == "partner-integrations@example.com"
    assert [e["detail-type"] for e in report["events_out"]] == [
        "certrelay.finding-raised",
        "certrelay.owners-notified",
    ]
    assert {
        "name": "EventsTriaged",
        "dimensions": {"kind": "Expired", "route": "attention", "source": "aws.acm"},
        "value": 1.0,
    } in report["metrics"]


def test_every_sample_with_a_fitting_certificate_takes_its_route(capsys):
    expected = {
        "approaching-expiration.json": ("legacy-imported", "Owners Notified"),
        "renewal-action-required.json": ("web-private", "Owners Alerted"),
        "expired.json": ("expired-imported", "Owners Alerted"),
        "available.json": ("web-private", "Renewal Distributed"),
        "available.issuance-private.json": ("web-private", "Renewal Distributed"),
        "available.import-imported.json": ("legacy-imported", "Owners Notified"),
        "revoked.json": ("public-site", "Owners Alerted"),
        "rotated.json": ("web-private", "Owners Notified"),
    }
    assert set(expected) == {p.name for p in EVENTS.glob("*.json")}, "a sample has no route here"
    for name, (certificate, final_state) in expected.items():
        status, out, _ = run(
            capsys, "local", "run", str(EVENTS / name), "--cert", certificate, "--json"
        )
        assert status == 0, name
        (execution,) = json.loads(out)["executions"]
        assert execution["states"][-1] == final_state, name


def test_non_threshold_day_starts_no_execution(capsys, tmp_path):
    event = json.loads((EVENTS / "approaching-expiration.json").read_text())
    event["account"] = "123456789012"  # the demo fleet's account; day 31 is not a threshold

    status, out, _ = run(
        capsys, "local", "run", str(write(tmp_path, "e.json", json.dumps(event))), "--json"
    )

    assert status == 0
    assert json.loads(out)["executions"] == []


def test_missing_file_is_one_line_exit_2(capsys, tmp_path):
    status, _, err = run(capsys, "local", "run", str(tmp_path / "nope.json"))

    assert_one_line_error(status, err, "cannot read", "nope.json")


def test_invalid_json_is_one_line_exit_2(capsys, tmp_path):
    status, _, err = run(capsys, "local", "run", str(write(tmp_path, "bad.json", '{"version": ')))

    assert_one_line_error(status, err, "not valid JSON", "line 1")


def test_json_that_is_not_an_object_is_refused(capsys, tmp_path):
    status, _, err = run(capsys, "local", "run", str(write(tmp_path, "list.json", "[1, 2]")))

    assert_one_line_error(status, err, "one JSON object")


def test_unknown_detail_type_is_one_line_exit_2(capsys, tmp_path):
    event = json.loads((EVENTS / "expired.json").read_text())
    event["detail-type"] = "ACM Certificate Teleported"

    status, _, err = run(capsys, "local", "run", str(write(tmp_path, "e.json", json.dumps(event))))

    assert_one_line_error(status, err, "ACM Certificate Teleported")


def test_event_from_another_account_is_one_line_exit_2(capsys, tmp_path):
    event = json.loads((EVENTS / "expired.json").read_text())
    event["account"] = "999999999999"

    status, _, err = run(capsys, "local", "run", str(write(tmp_path, "e.json", json.dumps(event))))

    assert_one_line_error(status, err, "account 999999999999", "account 123456789012")


def test_empty_resources_is_one_line_exit_2(capsys, tmp_path):
    event = json.loads((EVENTS / "expired.json").read_text())
    event["resources"] = []

    status, _, err = run(capsys, "local", "run", str(write(tmp_path, "e.json", json.dumps(event))))

    assert_one_line_error(status, err, "resources")


def test_unknown_certificate_name_is_one_line_exit_2(capsys):
    status, _, err = run(capsys, "local", "run", str(EVENTS / "expired.json"), "--cert", "nope")

    assert_one_line_error(status, err, "unknown certificate 'nope'", "web-private")


def test_invalid_fleet_file_is_one_line_exit_2(capsys, tmp_path):
    fleet = write(tmp_path, "fleet.yaml", "certificates:\n  a: {type: PRIVATE}\n")

    status, _, err = run(
        capsys, "local", "run", str(EVENTS / "expired.json"), "--fleet", str(fleet)
    )

    assert_one_line_error(status, err, "fleet.yaml", "certificates.a")


def test_console_script_prints_no_traceback_on_bad_input(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "certrelay.local.cli",
            "local",
            "run",
            str(tmp_path / "missing.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
