"""The CLI contract (DESIGN.md §9): --json shape, and bad input as one line on stderr, exit 2."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from certrelay.cli.main import main
from tests.functional.cli_helpers import EnginePool, assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_output_has_the_contract_keys_and_the_path_taken(capsys, reused_engines):
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


def test_every_sample_with_a_fitting_certificate_takes_its_route(capsys, reused_engines):
    # --cert brings the certificate into the state the event reports; the Approaching
    # Expiration sample says 31 days, which is not a threshold day, so the rule filters it
    expected = {
        "approaching-expiration.json": ("legacy-imported", None),
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
        executions = json.loads(out)["executions"]
        assert [e["states"][-1] for e in executions] == ([final_state] if final_state else []), name
        assert all(e["output"]["route"] != "inconsistent" for e in executions), name


def test_non_threshold_day_starts_no_execution(capsys, tmp_path, reused_engines):
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


def test_unknown_certificate_name_is_one_line_exit_2(capsys, reused_engines):
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
            "certrelay.cli",
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


def local_run(capsys, tmp_path: Path, event: dict, *args: str) -> tuple[int, dict, str]:
    """`certrelay local run` on `event` written to a file: (status, --json report, stderr)."""
    path = write(tmp_path, "event.json", json.dumps(event))
    status, out, err = run(capsys, "local", "run", str(path), *args, "--json")
    return status, (json.loads(out) if status == 0 else {}), err


def sample(name: str, **detail: object) -> dict:
    event = json.loads((EVENTS / name).read_text())
    event["detail"].update(detail)
    return event


# --cert NAME brings the fleet certificate into the state each kind of event reports, so the
# event is consistent with ACM: (sample, detail changes, certificate, what ACM says afterwards)
REPORTED_STATES = [
    ("revoked.json", {}, "public-site", {"status": "REVOKED"}, "CertificateRevoked"),
    ("expired.json", {}, "public-site", {"status": "EXPIRED"}, "CertificateExpired"),
    ("available.json", {}, "web-private", {"days_to_expiry": 395}, "DistributionPending"),
    ("rotated.json", {}, "legacy-imported", {"days_to_expiry": 395}, "CertificateRotated"),
    (
        "approaching-expiration.json",
        {"DaysToExpiry": 7},
        "legacy-imported",
        {"days_to_expiry": 7},
        "ImportedExpiring",
    ),
    (
        "renewal-action-required.json",
        {"DaysToExpiry": 15},
        "orphan",
        {"days_to_expiry": 15},
        "RenewalActionRequired",
    ),
]


@pytest.mark.parametrize(
    ("name", "detail", "certificate", "acm", "reason"),
    REPORTED_STATES,
    ids=[f"{r[0]}-{r[2]}" for r in REPORTED_STATES],
)
def test_cert_brings_the_certificate_into_the_state_the_event_reports(
    capsys, tmp_path, reused_engines, name, detail, certificate, acm, reason
):
    # GIVEN a fleet certificate that is not (yet) in the state the event reports
    # WHEN the event is run with --cert
    status, report, err = local_run(capsys, tmp_path, sample(name, **detail), "--cert", certificate)

    # THEN ACM says what the event says, and the event takes its consistent route
    assert status == 0, err
    (execution,) = report["executions"]
    decision = execution["output"]
    assert decision["reason"] == reason, decision["summary"]
    for field, value in acm.items():
        assert decision["certificate"][field] == value, field


def test_a_contradiction_cert_cannot_bring_about_is_reported_as_inconsistent(
    capsys, tmp_path, reused_engines
):
    # GIVEN an imported certificate, WHEN a RENEWAL (which only ACM-issued ones get) is run for it
    status, report, err = local_run(
        capsys, tmp_path, sample("available.json"), "--cert", "legacy-imported"
    )

    # THEN it goes to operations as inconsistent: no owner email, no finding
    assert status == 0, err
    (execution,) = report["executions"]
    assert execution["states"][-2:] == ["Report Inconsistent Event", "Event Inconsistent"]
    assert "the certificate was imported" in execution["output"]["summary"]
    assert [n for n in report["notifications"] if n["recipient"]] == []
    assert report["findings"] == []


ARN = "arn:aws:acm:us-east-1:123456789012:certificate/61f50cd4-45b9-4259-b049-d0a53682fa4b"


def nested(levels: int) -> dict:
    event = sample("expired.json")
    event["detail"]["Deep"] = json.loads("[" * levels + "]" * levels)
    return event


def oversized() -> dict:
    return sample("expired.json", Padding="x" * 300 * 1024)  # 300 KB


BAD_EVENTS = [
    ("ARN with a trailing newline", {"resources": [ARN + "\n"]}, "is not an ACM certificate ARN"),
    ("ARN of another service", {"resources": [ARN.replace(":acm:", ":iam:")]}, "not an ACM"),
    ("ARN of another account", {"resources": [ARN.replace("1234", "9999")]}, "999956789012"),
    ("ARN in another region", {"resources": [ARN.replace("us-east-1", "eu-west-1")]}, "eu-west"),
    ("ARN in another partition", {"resources": [ARN.replace("aws:", "aws-cn:", 1)]}, "aws-cn"),
    ("second ARN of another account", {"resources": [ARN, ARN.replace("1234", "9999")]}, "9999"),
    ("event from another region", {"region": "eu-west-1"}, "region eu-west-1"),
    ("account with a newline", {"account": "123456789012\n"}, "not a 12-digit AWS account"),
    ("DaysToExpiry as text", {"detail": {"DaysToExpiry": "7"}}, "must be a whole number"),
]


@pytest.mark.parametrize(
    ("case", "changes", "fragment"), BAD_EVENTS, ids=[b[0] for b in BAD_EVENTS]
)
def test_an_event_the_stack_would_refuse_is_one_line_before_anything_is_deployed(
    capsys, tmp_path, monkeypatch, case, changes, fragment
):
    monkeypatch.setattr("certrelay.local.engine.LocalEngine._start", _never_deployed)
    event = {**sample("approaching-expiration.json", DaysToExpiry=7), **changes}

    status, _, err = local_run(capsys, tmp_path, event)

    assert_one_line_error(status, err, fragment)


@pytest.mark.parametrize(
    ("case", "text", "fragment"),
    [
        ("deeper than Python's parser", "[" * 100_000 + "]" * 100_000, "nests JSON too deeply"),
        ("deep object", '{"a":' * 100_000 + "1" + "}" * 100_000, "nests JSON too deeply"),
        ("deeper than an event needs", json.dumps(nested(200)), "levels deep"),
        ("over Step Functions' 256 KiB", json.dumps(oversized()), "refuses execution input over"),
    ],
    ids=lambda value: value if len(str(value)) < 40 else "",
)
@pytest.mark.parametrize("command", ["run", "send"])
def test_nested_or_oversized_json_is_one_line_exit_2_before_anything_is_deployed(
    capsys, tmp_path, monkeypatch, command, case, text, fragment
):
    monkeypatch.setattr("certrelay.local.engine.LocalEngine._start", _never_deployed)
    monkeypatch.setattr("certrelay.cli.send.send", _never_deployed)
    path = write(tmp_path, "event.json", text)

    status, _, err = (
        run(capsys, "local", command, str(path), "--port", "1")
        if command == "send"
        else run(capsys, "local", "run", str(path))
    )

    assert_one_line_error(status, err, fragment)


def test_an_event_of_exactly_256_kb_is_read(tmp_path):
    from certrelay.events import EVENT_SIZE_LIMIT, entry_size
    from certrelay.local.intake import read_event

    event = sample("expired.json", Padding="")
    event["detail"]["Padding"] = "x" * (EVENT_SIZE_LIMIT - entry_size(event))
    path = write(tmp_path, "event.json", json.dumps(event, indent=2))

    assert entry_size(read_event(path)) == EVENT_SIZE_LIMIT


def _never_deployed(*args: object, **kwargs: object) -> None:
    raise AssertionError("bad input must be refused before anything is deployed")


def test_an_execution_arn_with_a_trailing_newline_is_one_line_exit_2(capsys):
    arn = "arn:aws:states:us-east-1:123456789012:execution:certrelay:run-1\n"

    status, _, err = run(capsys, "history", "--aws", "--execution-arn", arn)

    assert_one_line_error(status, err, "is not a Step Functions execution ARN")


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory, engine_pool: EnginePool) -> dict:
    """`certrelay demo --json` once for the demo tests (the whole story takes some seconds)."""
    engine_pool.stop()  # the demo starts its own engine: one embedded AWS per process
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CERTRELAY_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(["demo", "--json"])
    assert status == 0
    return json.loads(out.getvalue())


def demo_run_of(report: dict, domain: str) -> dict:
    (execution,) = [
        e
        for e in report["executions"]
        if e["output"]["certificate"]["domain"] == domain and e["output"]["route"] == "distribute"
    ]
    return execution


def test_demo_a_like_for_like_renewal_is_approved_by_policy_and_distributed(demo_report):
    # GIVEN api-private: approval: unless-changed, and its last verified distribution on record
    # WHEN the demo renews it
    execution = demo_run_of(demo_report, "api.internal.example.com")
    # THEN the policy approves (like-for-like), nobody is asked, and it is distributed
    assert execution["status"] == "SUCCEEDED"
    assert "Request Approval" not in execution["states"]
    assert "Approved By Policy" in execution["states"]
    assert execution["states"][-1] == "Renewal Distributed"
    plan = execution["output"]["approval"]
    assert (plan["mode"], plan["approver"], plan["reasons"]) == (
        "unless-changed",
        "policy",
        ["LikeForLike"],
    )
    assert execution["output"]["approval_decision"]["reason"] == "LikeForLike"
    approved = [
        e["detail"]
        for e in demo_report["events_out"]
        if e["detail-type"] == "certrelay.approved"
        and e["detail"]["certificate"]["domain"] == "api.internal.example.com"
    ]
    assert [(d["approver"], d["approval_reason"]) for d in approved] == [("policy", "LikeForLike")]
    assert not [
        n
        for n in demo_report["notifications"]
        if n["recipient"] == "api-lead@example.com" and "api.internal" in n["subject"]
    ], "the approver is not asked"


def test_demo_a_renewal_with_a_new_name_asks_a_person_and_says_why(demo_report):
    # GIVEN api-edge: the same profile, but the renewal has a name its last distribution lacked
    # WHEN the demo renews it (and the approver approves, the demo's default)
    execution = demo_run_of(demo_report, "edge.internal.example.com")
    # THEN a person is asked, told the reason, and the approved renewal is distributed
    assert "Request Approval" in execution["states"]
    assert "Approved By Policy" not in execution["states"]
    plan = execution["output"]["approval"]
    assert plan["approver"] == "human"
    assert "NamesChanged" in plan["reasons"]
    assert execution["output"]["approval_decision"]["approver"] == "api-lead@example.com"
    assert execution["states"][-1] == "Renewal Distributed"
    asked = [
        e["detail"]
        for e in demo_report["events_out"]
        if e["detail-type"] == "certrelay.approval-requested"
        and e["detail"]["certificate"]["domain"] == "edge.internal.example.com"
    ]
    assert [d["approval_reason"] for d in asked] == ["NamesChanged"]
