"""A real headless browser (Debian chromium) opens the approver's link and presses Approve.

GIVEN web-private was renewed and the execution waits in Request Approval, WHEN a person opens
the link from the email in Chromium, reads the page, types a reason and clicks Approve, THEN
the execution moves on to Renewal Distributed with that person and reason in its history.
"""

from __future__ import annotations

import json
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from certrelay.local import human
from certrelay.local.engine import LocalEngine
from tests.browser.pages import replaced

ROOT = Path(__file__).resolve().parents[2]


def test_approver_opens_the_link_in_a_browser_and_approves(browser, tmp_path):
    with LocalEngine() as engine:
        event = json.loads((ROOT / "events" / "available.json").read_text(encoding="utf-8"))
        _, started = engine.put_event(engine.certificate_event(event, "web-private"))
        ((name, arn),) = started
        engine.wait_for_state(arn, "Request Approval")
        link = _first_link(engine, arn)

        browser.get(link)
        page = browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(tmp_path / "approval-page.png"))
        assert "web.internal.example.com" in page
        assert "web-lead@example.com" in page
        assert engine.status(arn) == "RUNNING", "opening the page decided nothing"

        confirmation_page = browser.find_element(By.TAG_NAME, "html")
        browser.find_element(By.TAG_NAME, "textarea").send_keys("Checked in a real browser")
        browser.find_element(By.CSS_SELECTOR, "button[value='approve']").click()
        WebDriverWait(browser, 20).until(replaced(confirmation_page))
        browser.save_screenshot(str(tmp_path / "answer-page.png"))
        answer = browser.find_element(By.TAG_NAME, "body").text
        execution = engine.wait(arn, name=name, seconds=30)

    assert "approve" in answer.lower()
    assert execution.states[-1] == "Renewal Distributed"
    decision = execution.output["approval_decision"]
    assert decision["approver"] == "web-lead@example.com"
    assert decision["reason"] == "Checked in a real browser"


def _first_link(engine: LocalEngine, arn: str) -> str:
    return human.links_when_sent(engine, arn)[0]


def test_with_sso_the_approver_signs_in_at_the_issuer_and_approves(browser, tmp_path):
    # GIVEN the stack deployed with SSO against a small OIDC issuer the test runs
    from tests.functional.oidc_issuer import CLIENT_ID, running_issuer

    with running_issuer() as issuer:
        parameters = {"ApprovalSsoIssuer": issuer.url, "ApprovalSsoAudience": CLIENT_ID}
        with LocalEngine(parameters=parameters) as engine:
            event = json.loads((ROOT / "events" / "available.json").read_text(encoding="utf-8"))
            _, started = engine.put_event(engine.certificate_event(event, "web-private"))
            ((name, arn),) = started
            engine.wait_for_state(arn, "Request Approval")
            link = _first_link(engine, arn)

            # WHEN the approver opens the link: the browser goes to the issuer and comes back
            browser.get(link)
            WebDriverWait(browser, 20).until(
                expected_conditions.presence_of_element_located((By.TAG_NAME, "textarea"))
            )
            page = browser.find_element(By.TAG_NAME, "body").text
            browser.save_screenshot(str(tmp_path / "sso-approval-page.png"))
            # THEN the page shows who signed in, and signing in decided nothing
            assert len(issuer.authorize_requests) == 1
            assert len(issuer.token_requests) == 1
            assert "Signed in as" in page
            assert "web-lead@example.com" in page
            assert browser.current_url == link
            assert engine.status(arn) == "RUNNING"
            session = browser.get_cookie("certrelay_session")
            assert session is not None
            assert session["httpOnly"] is True
            assert session["sameSite"] == "Lax"

            # WHEN they approve with the page's button
            confirmation_page = browser.find_element(By.TAG_NAME, "html")
            browser.find_element(By.TAG_NAME, "textarea").send_keys("Signed in with SSO")
            browser.find_element(By.CSS_SELECTOR, "button[value='approve']").click()
            WebDriverWait(browser, 20).until(replaced(confirmation_page))
            answer = browser.find_element(By.TAG_NAME, "body").text
            execution = engine.wait(arn, name=name, seconds=30)

    # THEN the execution was approved by the signed-in person
    assert "approve" in answer.lower()
    assert execution.states[-1] == "Renewal Distributed"
    decision = execution.output["approval_decision"]
    assert decision["approver"] == "web-lead@example.com"
    assert decision["reason"] == "Signed in with SSO"
