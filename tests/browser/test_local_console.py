"""`certrelay local up`'s console in a real headless browser (Debian chromium).

GIVEN the local engine and its console, WHEN an ACM event is POSTed to the console and a person
follows the execution in Chromium (the list, the execution, the approval link in its email),
THEN the state machine is drawn with the states entered highlighted and the edges taken marked,
a failed state is red, and the event history shows each state's input and output, redacted:
no private key, passphrase, link key or task token anywhere on the page.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from certrelay.console import history
from certrelay.console.server import Console
from certrelay.local import human
from certrelay.local.engine import LocalEngine
from tests.browser.pages import stale
from tests.statemachine.conftest import private_key_fragments, secret_values

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


@pytest.fixture
def console(request: pytest.FixtureRequest) -> Iterator[Console]:
    speed = getattr(request, "param", 50.0)
    with LocalEngine(clock_speed=speed) as engine, Console(engine, port=0) as served:
        yield served


def post_event(console: Console, event_file: str, cert: str) -> list[str]:
    event = json.loads((EVENTS / event_file).read_text(encoding="utf-8"))
    request = urllib.request.Request(
        f"{console.url}/events",
        data=json.dumps({"event": event, "cert": cert}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        answer = json.loads(response.read())
    return [execution["name"] for execution in answer["executions"]]


def arn_of(console: Console, name: str) -> str:
    return next(row.arn for row in console.executions() if row.name == name)


def retrying(action: Callable[[], Any], seconds: float = 20) -> Any:
    """Run `action`, again if the page refreshed itself under it (the list refreshes itself)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return action()
        except WebDriverException as error:
            if not stale(error):
                raise
            time.sleep(0.1)
    return action()  # the last try: its stale-element error is the test's error


DIAGRAM_MARKS = """
const pairs = (selector, first, second) => Array.from(
  document.querySelectorAll(selector), (e) => [e.getAttribute(first), e.getAttribute(second)]);
return [pairs("svg.state-machine g.state", "data-state", "class"),
        pairs("svg.state-machine g.edge.taken", "data-source", "data-target")];
"""


def diagram(browser: webdriver.Chrome) -> dict[str, set[Any]]:
    """What the console's SVG marks: states entered and failed, edges taken."""

    def read() -> dict[str, set[Any]]:
        # one script, so the marks come from one document: element by element, a page that
        # refreshes itself every few seconds could be replaced between two reads (under load)
        states, edges = browser.execute_script(DIAGRAM_MARKS)
        marked = [(name, (classes or "").split()) for name, classes in states]
        start_markers = {"start", "each item"}
        return {
            "entered": {n for n, c in marked if "entered" in c and n not in start_markers},
            "failed": {n for n, c in marked if "failed" in c},
            "taken": {(source, target) for source, target in edges},
        }

    result: dict[str, set[Any]] = retrying(read)
    return result


def approval_email_sent(console: Console, arn: str) -> None:
    deadline = time.monotonic() + 10
    while not human.approval_links(console.engine, arn):
        assert time.monotonic() < deadline, "no approval email within 10 s"
        time.sleep(0.02)


def open_emails_and_click_the_approval_link(browser: webdriver.Chrome) -> Callable[[], None]:
    def act() -> None:
        for summary in browser.find_elements(By.CSS_SELECTOR, "section.emails summary"):
            summary.click()
        browser.find_element(By.PARTIAL_LINK_TEXT, "/approvals/").click()

    return act


def status_is(expected: str) -> Callable[[webdriver.Chrome], bool]:
    def check(browser: webdriver.Chrome) -> bool:
        try:
            return bool(browser.find_element(By.CSS_SELECTOR, "dd.status").text == expected)
        except WebDriverException as error:
            if not stale(error):
                raise
            return False  # the page refreshed under it: WebDriverWait asks again

    return check


def task_tokens(raw_history: list[dict[str, Any]]) -> list[str]:
    tokens = []
    for event in raw_history:
        details = event.get("taskScheduledEventDetails") or {}
        payload = json.loads(details.get("parameters") or "{}").get("Payload") or {}
        if isinstance(payload, dict) and payload.get("token"):
            tokens.append(str(payload["token"]))
    return tokens


def assert_no_secrets(page: str, engine: LocalEngine, raw_history: list[dict[str, Any]]) -> None:
    secrets = private_key_fragments(engine) + secret_values(engine)
    assert secrets, "the fleet should hold keys and secrets for this check to mean anything"
    assert "PRIVATE KEY" not in page
    assert not [s for s in secrets if s in page], "the console shows a key or a secret"
    tokens = task_tokens(raw_history)
    assert tokens, "the approval's task token should be in the raw history"
    assert not [t for t in tokens if t in page], "the console shows a task token"


def test_a_person_follows_a_renewal_from_the_list_to_its_approval_and_end(browser, console):
    (name,) = post_event(console, "available.json", "web-private")
    arn = arn_of(console, name)
    console.engine.wait_for_state(arn, "Request Approval")
    approval_email_sent(console, arn)

    browser.get(console.url)
    retrying(lambda: browser.find_element(By.LINK_TEXT, name).click())
    WebDriverWait(browser, 20).until(lambda b: name in b.title)
    waiting = diagram(browser)
    assert "Request Approval" in waiting["entered"]
    assert "Export Certificate" not in waiting["entered"], "nothing exported before approval"

    retrying(open_emails_and_click_the_approval_link(browser))
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.TAG_NAME, "textarea"))
    assert console.engine.status(arn) == "RUNNING", "opening the link decided nothing"
    browser.find_element(By.TAG_NAME, "textarea").send_keys("Followed in the local console")
    browser.find_element(By.CSS_SELECTOR, "button[value='approve']").click()
    execution = console.engine.wait(arn, name=name, seconds=60)

    browser.get(f"{console.url}/executions/{name}")
    WebDriverWait(browser, 20).until(status_is("SUCCEEDED"))
    drawn = diagram(browser)
    steps = history.steps(history.redact(execution.history))
    page = browser.page_source
    rows = {  # the whole row: short input and output, and what opens under them
        row.get_attribute("data-state"): row.get_attribute("textContent")
        for row in browser.find_elements(By.CSS_SELECTOR, "table.history tbody tr")
    }

    assert execution.status == "SUCCEEDED"
    assert drawn["entered"] == set(execution.states)
    assert {"Escalate Approval", "Notify Rejection", "Report Failure"}.isdisjoint(drawn["entered"])
    assert drawn["failed"] == set()
    top = [step.name for step in steps if step.depth == 0]
    assert set(itertools.pairwise(top)) <= drawn["taken"]
    assert ("Target Kind?", "Copy To Bucket") in drawn["taken"], "inside the Map too"
    assert set(rows) == set(execution.states)
    assert '"detail-type":"ACM Certificate Available"' in rows["Triage Event"], "input shown"
    assert '"route":"distribute"' in rows["Triage Event"], "output shown"
    assert "fingerprint" in rows["Export Certificate"]
    assert "Followed in the local console" in rows["Request Approval"]
    assert_no_secrets(page, console.engine, execution.history)
    with urllib.request.urlopen(console.url, timeout=30) as response:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "<script" not in response.read().decode()


@pytest.mark.parametrize("console", [86400 / 2], indirect=True)  # a 24-hour wait takes 2 s
def test_an_expired_approval_is_drawn_in_red_where_it_failed(browser, console):
    (name,) = post_event(console, "available.json", "web-private")
    execution = console.engine.wait(arn_of(console, name), name=name, seconds=60)

    browser.get(f"{console.url}/executions/{name}")
    WebDriverWait(browser, 20).until(status_is("FAILED"))
    drawn = diagram(browser)
    error = browser.find_element(By.CSS_SELECTOR, "dd.error").text

    assert execution.states[-1] == "Approval Expired"
    assert "Approval Expired" in drawn["failed"]
    assert {"Request Approval", "Escalate Approval"} <= drawn["failed"], "both waits timed out"
    assert ("Escalate Approval", "Notify Expiry") in drawn["taken"], "left by its Catch"
    assert "Export Certificate" not in drawn["entered"]
    assert execution.error
    assert execution.error in error
    assert_no_secrets(browser.page_source, console.engine, execution.history)


def test_a_renewal_approved_by_policy_shows_the_certificates_distribution_record(browser, console):
    # GIVEN api-private: approval: unless-changed, its last distribution on record
    console.engine.renew("api-private")
    (name,) = post_event(console, "available.json", "api-private")
    # WHEN the policy approves and distributes it, and a person opens the execution's page
    execution = console.engine.wait(arn_of(console, name), name=name, seconds=60)
    browser.get(f"{console.url}/executions/{name}")
    WebDriverWait(browser, 20).until(status_is("SUCCEEDED"))
    section = browser.find_element(By.CSS_SELECTOR, "section.record")
    rows = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in section.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]
    # THEN the record shows the serial just distributed, verified on its one target
    assert "Request Approval" not in execution.states
    serial = execution.output["bundle"]["serial"]
    assert "Distribution record" in section.text
    assert serial in section.text
    assert [(r[0], r[2], r[5]) for r in rows] == [("api#partner", serial, "verified")]
    assert "api.internal.example.com" in section.text


def test_retrying_takes_chromedrivers_node_error_as_a_refreshed_page_and_nothing_else():
    inspector = (
        'unknown error: unhandled inspector error: {"code":-32000,'
        '"message":"Node with given id does not belong to the document"}'
    )
    attempts: list[int] = []

    def clicked_as_the_page_refreshed() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise WebDriverException(inspector)
        if len(attempts) == 2:
            raise StaleElementReferenceException("stale element reference")
        return "clicked"

    def missing() -> None:
        raise WebDriverException("no such element")

    assert retrying(clicked_as_the_page_refreshed) == "clicked"
    assert len(attempts) == 3
    with pytest.raises(WebDriverException, match="no such element"):
        retrying(missing)  # any other error is the test's, at once
