"""Reading an install step's Run Command output the way the SSM agent really shapes it."""

from __future__ import annotations

import pytest

from certrelay.local.fleet.servers import AGENT_OUTPUT_LIMIT, agent_output
from certrelay.ssm_output import install_outcome, split_output

FP = "ad3db0ba31515e81778ecc26a8dc8c0f6f912b93adfc837ec72da4f54da6830e"

# A failed install as ListCommandInvocations returns the step's Output on AWS: stdout (the
# status line), the agent's ERROR title, the script's notes and the reload's own complaint on
# stderr, then the agent's line about the exit status.
AWS_ROLLED_BACK = (
    "ROLLED BACK: the reload failed (exit 1)\n"
    "\n----------ERROR-------\n"
    "certrelay: running: nginx -t -q\n"
    "certrelay: installed /etc/ssl/web/cert.pem, /etc/ssl/web/key.pem, /etc/ssl/web/chain.pem\n"
    "certrelay: running: nginx -t -q\n"
    "certrelay: running: systemctl reload nginx\n"
    "Job for nginx.service failed because the control process exited with error code.\n"
    "certrelay: running: systemctl reload nginx\n"
    "failed to run commands: exit status 3"
)


def test_a_rolled_back_install_gives_its_status_line_and_reason_not_the_exit_status() -> None:
    status, reason = install_outcome(AWS_ROLLED_BACK)

    assert status == "ROLLED BACK: the reload failed (exit 1)"
    assert reason == (
        "the reload failed (exit 1); last output: Job for nginx.service failed because the "
        "control process exited with error code."
    )


def test_a_success_with_notes_on_stderr_is_installed_with_no_reason() -> None:
    output = agent_output(
        f"INSTALLED {FP} /etc/ssl/web/cert.pem\n", "certrelay: running: nginx -t -q\n", 0
    )

    assert "----------ERROR-------" in output  # the agent adds the title for any stderr
    assert install_outcome(output) == (f"INSTALLED {FP} /etc/ssl/web/cert.pem", "")


REFUSED = "REFUSED: chain.pem holds no certificate"
NEEDS_A_PERSON = (
    "ROLLBACK FAILED: the reload failed (exit 1); the reload after restoring failed (exit 1)"
)


@pytest.mark.parametrize(
    ("stdout", "code", "status", "reason"),
    [
        (REFUSED + "\n", 2, REFUSED, REFUSED.removeprefix("REFUSED: ")),
        (NEEDS_A_PERSON + "\n", 4, NEEDS_A_PERSON, NEEDS_A_PERSON.partition(": ")[2]),
    ],
)
def test_every_status_line_of_the_script_is_found(
    stdout: str, code: int, status: str, reason: str
) -> None:
    output = agent_output(stdout, "certrelay: running: systemctl reload nginx\n", code)

    assert output.endswith(f"failed to run commands: exit status {code}")
    assert install_outcome(output) == (status, reason)


def test_the_status_line_survives_when_the_agent_truncates_a_long_stderr() -> None:
    noisy = "".join(f"nginx: [warn] line {n} of a long config test\n" for n in range(200))
    status_line = "ROLLED BACK: the config test fails with the new certificate (exit 1)"
    output = agent_output(status_line + "\n", noisy, 3)

    assert len(output) <= AGENT_OUTPUT_LIMIT
    assert output.endswith("---Error truncated----")
    assert "exit status 3" not in output  # the agent's own line is cut off with the rest
    status, reason = install_outcome(output)
    assert status == "ROLLED BACK: the config test fails with the new certificate (exit 1)"
    assert reason.startswith("the config test fails with the new certificate (exit 1); last")
    assert "---Error truncated----" not in reason


def test_without_a_status_line_the_reason_is_what_stderr_said_last() -> None:
    # killed before it could print: the agent's timeout, say
    output = agent_output("", "certrelay: running: systemctl reload nginx\n", 137)

    assert install_outcome(output) == ("", "running: systemctl reload nginx")


def test_without_any_output_the_reason_is_the_agents_exit_status() -> None:
    assert install_outcome(agent_output("", "", 1)) == ("", "exit status 1")
    assert install_outcome("") == ("", "no output")


def test_a_status_line_on_stderr_does_not_outrank_the_one_on_stdout() -> None:
    # a config test that prints something looking like a status line
    output = agent_output(
        f"INSTALLED {FP} /etc/ssl/web/cert.pem\n", "ROLLED BACK: not from certrelay\n", 0
    )

    assert install_outcome(output)[0] == f"INSTALLED {FP} /etc/ssl/web/cert.pem"


def test_the_output_splits_at_the_agents_error_title() -> None:
    assert split_output(AWS_ROLLED_BACK)[0] == "ROLLED BACK: the reload failed (exit 1)\n"
    assert split_output(AWS_ROLLED_BACK)[1].endswith("exit status 3")
    assert split_output("INSTALLED x\n") == ("INSTALLED x\n", "")


@pytest.mark.parametrize(
    ("stdout", "stderr", "expected"),
    [
        ("out\n", "", "out\n"),
        ("out\n", "err", "out\n\n----------ERROR-------\nerr"),
        ("", "err", "\n----------ERROR-------\nerr"),
    ],
)
def test_the_local_agent_output_is_the_agents_truncate_output(
    stdout: str, stderr: str, expected: str
) -> None:
    assert agent_output(stdout, stderr, 0) == expected


def test_both_long_streams_are_cut_in_half_with_both_markers() -> None:
    output = agent_output("o" * 3000, "e" * 3000, 0)

    assert len(output) <= AGENT_OUTPUT_LIMIT
    assert "\n---Output truncated---\n----------ERROR-------\n" in output
    assert output.endswith("\n---Error truncated----")
