"""A scripted approver: opens the link from the email and presses a button, as a person would.

It speaks plain HTTP to the locally served approval pages: GET the page, read the form (its
action, hidden fields, the reason box and the decision buttons), POST it. It never looks into
DynamoDB or the task token, so it proves the page works, not just the backend.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from certrelay.local.results import DECISIONS, Execution, SendResult

if TYPE_CHECKING:
    from certrelay.local.engine import LocalEngine

LINK = re.compile(r"https?://[^\s]+/approvals/[A-Za-z0-9._~-]+")


@dataclass
class Page:
    status: int
    body: str
    headers: dict[str, str]


@dataclass
class _Form:
    action: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, tuple[str, str]] = field(default_factory=dict)  # value -> (name, value)
    reason_field: str = ""


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form = _Form()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.form.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.form.fields[a.get("name", "")] = a.get("value", "")
        elif tag == "textarea":
            self.form.reason_field = a.get("name", "")
        elif tag == "button" and a.get("name"):
            self.form.buttons[a.get("value", "").lower()] = (a["name"], a.get("value", ""))


def links_in(text: str) -> list[str]:
    """Approval links in an email body."""
    return LINK.findall(text)


def open_page(url: str, *, method: str = "GET", data: bytes | None = None) -> Page:
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback only
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    request.add_header("User-Agent", "certrelay-demo-approver/1.0")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return Page(response.status, response.read().decode(), dict(response.headers.items()))
    except urllib.error.HTTPError as error:
        return Page(error.code, error.read().decode(), dict(error.headers.items()))


def press(link: str, decision: str, reason: str) -> Page:
    """Open `link`, then press the `decision` button ("approve" or "reject") with `reason`."""
    page = open_page(link)
    if page.status != 200:
        return page
    reader = _FormReader()
    reader.feed(page.body)
    form = reader.form
    if decision not in form.buttons:
        raise ValueError(f"the approval page has no {decision!r} button")
    fields = dict(form.fields)
    if form.reason_field:
        fields[form.reason_field] = reason
    name, value = form.buttons[decision]
    fields[name] = value
    target = urllib.parse.urljoin(link, form.action or link)
    return open_page(target, method="POST", data=urllib.parse.urlencode(fields).encode())


def approval_links(engine: LocalEngine, execution_arn: str) -> list[str]:
    """Links in the approval emails of one execution, in the order they were sent."""
    return [
        link
        for message in engine.notifications()
        if execution_arn in message["body"]
        for link in links_in(message["body"])
    ]


def links_when_sent(engine: LocalEngine, execution_arn: str, *, seconds: float = 10.0) -> list[str]:
    """The execution's approval links once its approval email is out (its Request Approval has
    recorded every pending item by then), woken by the execution's progress; an
    AssertionError at the deadline. Entering Request Approval is not enough: its function may
    not have run yet."""
    deadline = time.monotonic() + seconds
    engine.await_progress(lambda: bool(approval_links(engine, execution_arn)), deadline=deadline)
    links = approval_links(engine, execution_arn)
    if not links:
        raise AssertionError(f"no approval email within {seconds:.0f} s")
    return links


def send_and_decide(
    engine: LocalEngine,
    event: dict[str, Any],
    decision: str | None,
    *,
    reason: str = "",
    on_waiting: Callable[[list[str]], None] | None = None,
    wait_seconds: float = 60.0,
) -> SendResult:
    """Send `event`; when an execution waits for approval, act as `decision` says.

    approve / reject: open the first approver's link and press that button. timeout: press
    nothing, so the wait (sped up by the engine's clock) runs out. None: a person decides in a
    browser; `on_waiting` is told the links once.
    """
    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
    matched, started = engine.put_event(event)
    executions = [
        _drive(engine, name, arn, decision, reason, on_waiting, wait_seconds)
        for name, arn in started
    ]
    return SendResult(event, matched, executions)


def _drive(
    engine: LocalEngine,
    name: str,
    arn: str,
    decision: str | None,
    reason: str,
    on_waiting: Callable[[list[str]], None] | None,
    wait_seconds: float,
) -> Execution:
    deadline = time.monotonic() + wait_seconds
    # Woken by the execution's own progress: the approval email is sent before the task
    # that waits for the decision records its next history event.
    asking = engine.await_progress(
        lambda: engine.ended(arn) or bool(approval_links(engine, arn)), deadline=deadline
    )
    links = approval_links(engine, arn)
    if asking and links and not engine.ended(arn):
        if on_waiting is not None:
            on_waiting(links)
        if decision in ("approve", "reject"):
            answer = press(links[0], decision, reason)
            if answer.status != 200:
                raise RuntimeError(f"the approval page answered {answer.status}")
    return engine.wait(arn, name=name, seconds=max(1.0, deadline - time.monotonic()))
