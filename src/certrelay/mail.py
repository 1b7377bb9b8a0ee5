"""SNS mail, the parts every function shares: subjects, message attributes, console links, and
how free text enters a mail.

Free text (a rejection reason, an error's cause, anything a person, a tag or an event supplied)
appears only as a quote block: every line starts with "> ", control characters are dropped and
the length is capped. certrelay's own lines never start with "> ", so a planted line such as
"Execution: https://..." cannot pass as one of ours. A short value shown on one of our lines (a
domain, a serial, a name) loses its control characters, newlines included, and is capped.

Kept free of the event and policy models, so the approval pages import only this and
certrelay.text (and the standard library) at cold start.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

SUBJECT_PREFIX = "[certrelay]"
QUOTE = "> "  # the prefix of every line of quoted free text, and of no line of ours
MAX_QUOTED_CHARS = 2000
MAX_QUOTED_LINES = 30
MAX_INLINE_CHARS = 300
MAX_SUBJECT = 99  # SNS: "less than 100 characters", ASCII, no control characters
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}
_EXECUTION_ARN = re.compile(r"^arn:(aws[a-z-]*):states:([a-z0-9-]+):\d{12}:execution:.+$")


def console_url_for(execution_arn: str) -> str:
    """The Step Functions console page of an execution; empty when the ARN is not one."""
    match = _EXECUTION_ARN.fullmatch(execution_arn)
    if match is None:
        return ""
    partition, region = match.groups()
    host = _CONSOLE_HOSTS.get(partition, _CONSOLE_HOSTS["aws"])
    return (
        f"https://{region}.{host}/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )


def sns_message(
    recipient: str,
    subject: str,
    body: str,
    *,
    severity: str,
    event_kind: str,
    certificate_arn: str,
) -> dict[str, Any]:
    """One message as the publish step takes it; the attributes drive subscription filters."""
    return {
        "subject": subject,
        "message": body,
        "attributes": {
            "recipient": _string(recipient),
            "severity": _string(severity),
            "event_kind": _string(event_kind),
            "certificate": _string(certificate_arn),
        },
    }


def subject_line(severity: str, headline: str) -> str:
    """`[certrelay] SEVERITY: headline`, ASCII, no control characters, under SNS's limit."""
    text = f"{SUBJECT_PREFIX} {severity}: {headline}"
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = " ".join(CONTROL_CHARACTERS.sub(" ", ascii_text).split())
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 3].rstrip() + "..."


def quoted(text: str) -> list[str]:
    """Free text as quote-block lines: "> " each, no control characters, capped; "> (none)" if
    empty."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    capped = len(text) > MAX_QUOTED_CHARS
    lines = [CONTROL_CHARACTERS.sub("", line) for line in text[:MAX_QUOTED_CHARS].split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) > MAX_QUOTED_LINES:
        lines, capped = lines[:MAX_QUOTED_LINES], True
    if not lines:
        return [QUOTE + "(none)"]
    return [(QUOTE + line).rstrip() for line in lines] + ([QUOTE + "[cut short]"] if capped else [])


def inline(text: object, limit: int = MAX_INLINE_CHARS) -> str:
    """A value for one of our own lines: control characters (newlines too) dropped, capped."""
    clean = CONTROL_CHARACTERS.sub("", str(text))
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}
