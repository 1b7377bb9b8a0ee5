"""What an install step's Run Command output says: the script's status line and the reason.

The SSM agent does not hand back the script's stdout alone. A plugin's `Output` (what
ListCommandInvocations shows per step) is stdout, then, when stderr is not empty, a line
`----------ERROR-------` and stderr; a failed step's stderr ends with the agent's own line
`failed to run commands: exit status N`. The API keeps 2,500 characters of it, cutting stdout
and stderr with `---Output truncated---` / `---Error truncated----` markers; S3 output keeps
24,000. (amazon-ssm-agent: agent/framework/processor/executer/iohandler/iohandler.go,
`TruncateOutput` and `MarkAsFailed`; agent/plugins/runscript/runscript.go, `runCommands`.)

ssm/install-certificate.sh prints exactly one status line on stdout (INSTALLED, REFUSED,
ROLLED BACK, ROLLBACK FAILED) and its notes on stderr, so the last line of `Output` is the
agent's exit status, not the reason. `install_outcome` finds the status line wherever it is.
"""

from __future__ import annotations

import re

STEP_NAME = "installCertificate"  # the install document's one step (certrelay.ssm_document)
ERROR_SEPARATOR = "----------ERROR-------"
AGENT_FAILURE = re.compile(r"^failed to run commands: (exit status -?\d+|.*)$")
TRUNCATION_MARKERS = ("---Output truncated---", "---Error truncated----")
STATUS_LINE = re.compile(
    r"^(INSTALLED [0-9a-f]{64} \S+|(REFUSED|ROLLED BACK|ROLLBACK FAILED): .+)$"
)
_NOTE = "certrelay: "  # the script's progress notes on stderr
MAX_REASON = 300


def split_output(output: str) -> tuple[str, str]:
    """(stdout, stderr) of an agent plugin Output; stderr is "" when there was none."""
    lines = output.split("\n")
    for index, line in enumerate(lines):
        if line.rstrip("\r") == ERROR_SEPARATOR:
            stdout = "\n".join(lines[:index])
            return stdout, "\n".join(lines[index + 1 :])
    return output, ""


def install_outcome(output: str) -> tuple[str, str]:
    """(status line, reason) of one install step's output.

    The status line is the script's own (INSTALLED …, REFUSED: …, ROLLED BACK: …, ROLLBACK
    FAILED: …), searched in stdout first, then anywhere; "" when the script printed none (it
    never started, or the agent killed it). The reason is the status line's text after its
    label, followed by the last line a failing command wrote, if any; without a status line,
    the last thing stderr says, or the agent's exit status.
    """
    stdout, stderr = split_output(output)
    status = _status_line(stdout) or _status_line(output)
    err_lines = _meaningful(stderr)
    agent = [line for line in err_lines if AGENT_FAILURE.match(line)]
    said = [line for line in err_lines if not AGENT_FAILURE.match(line)]
    if status:
        label, _, text = status.partition(": ")
        if status.startswith("INSTALLED"):
            return status, ""
        commands = [line for line in said if not line.startswith(_NOTE)]
        reason = text if label else status
        if commands and commands[-1] not in reason:
            reason = f"{reason}; last output: {commands[-1]}"
        return status, reason[:MAX_REASON]
    if said:
        return "", said[-1].removeprefix(_NOTE)[:MAX_REASON]
    if agent:
        return "", agent[-1].removeprefix("failed to run commands: ")[:MAX_REASON]
    plain = _meaningful(stdout)
    return "", (plain[-1] if plain else "no output")[:MAX_REASON]


def _status_line(text: str) -> str:
    found = [line for line in _meaningful(text) if STATUS_LINE.match(line)]
    return found[-1] if found else ""


def _meaningful(text: str) -> list[str]:
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        for marker in TRUNCATION_MARKERS:
            line = line.removesuffix(marker).strip()
        if line and line != ERROR_SEPARATOR:
            lines.append(line)
    return lines
