"""`certrelay simulate` on the command line: its JSON, its text, its one-line refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.functional.cli_helpers import assert_one_line_error, run

ISSUE_FLEET = ("--certificates", "25", "--owners", "1", "--lifetime-days", "47", "--days", "365")


def test_simulate_json_prints_the_issues_rows_and_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # WHEN the issue's fleet is simulated with --json
    status, out, err = run(capsys, "simulate", *ISSUE_FLEET, "--json")
    data = json.loads(out)
    # THEN one JSON object: the owner's row with exactly the issue's keys, and the summary
    assert (status, err) == (0, "")
    assert list(data["owners"][0]) == [
        "owner",
        "certificates",
        "emails",
        "digests",
        "human_approvals",
        "policy_approvals",
        "exports",
        "max_emails_per_day",
    ]
    assert data["summary"]["policy"] == "unless-changed"
    assert data["summary"]["notify"] == "digest"
    assert data["summary"]["distributed"] == data["summary"]["renewals"]


def test_simulate_human_defaults_to_immediate_mail_and_prints_a_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # WHEN the human policy is simulated without --json
    status, out, _ = run(capsys, "simulate", *ISSUE_FLEET, "--policy", "human")
    # THEN a table per owner, then whether each renewal was distributed
    assert status == 0
    assert out.splitlines()[0].split()[:3] == ["owner", "certs", "emails"]
    assert "policy human, notify immediate" in out
    assert "not distributed 0" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--owners", "0"), "--owners must be 1"),
        (("--owners", "-3"), "--owners must not be negative"),
        (("--owners", "two"), "--owners must be a whole number"),
        (("--owners", "1", "--lifetime-days", "1"), "--lifetime-days must be 2"),
        (("--owners", "1", "--days", "3651"), "--days must be 1 to 3650"),
        (("--owners", "1", "--days", "-1"), "--days must not be negative"),
        (("--owners", "1", "--policy", "sometimes"), "--policy must be one of"),
        (("--owners", "1", "--notify", "weekly"), "--notify must be one of"),
        (("--owners", "1", "--failure-rate", "1"), "failure rate must be at least 0 and below 1"),
        (("--owners", "1", "--names-per-year", "nan"), "--names-per-year must be a number"),
    ],
)
def test_simulate_refuses_bad_input_in_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], fragment: str
) -> None:
    # GIVEN 25 certificates, 47 days, 365 days and one bad value WHEN simulated
    base = ("--certificates", "25", "--lifetime-days", "47", "--days", "365")
    status, out, err = run(capsys, "simulate", *base, *args)
    # THEN exit 2, one line on stderr naming the problem, nothing on stdout
    assert_one_line_error(status, err, fragment)
    assert out == ""


def test_simulate_runs_without_loading_the_local_engine() -> None:
    # GIVEN a fresh interpreter WHEN `certrelay simulate` runs THEN moto is never imported
    code = (
        "import sys; from certrelay.cli.main import main; "
        "main(['simulate', '--certificates', '3', '--owners', '1', '--lifetime-days', '47', "
        "'--days', '60', '--json']); "
        "print('moto loaded' if any(m.split('.')[0] == 'moto' for m in sys.modules) else 'light')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().endswith("light"), done.stdout[-200:]
