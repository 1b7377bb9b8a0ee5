"""A real headless browser (Debian chromium) decides two of three pending renewals on one page.

GIVEN three renewed private certificates whose executions all wait in Request Approval for the
same approver, WHEN that person opens one emailed link in Chromium, follows the page's pointer to
the batch page, ticks two renewals and presses Approve selected, THEN the result page says each
was approved, both executions go on to Renewal Distributed, and the third still waits.
"""

from __future__ import annotations

import json
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from certrelay.local import human
from certrelay.local.engine import LocalEngine
from certrelay.local.fleet.seed import load_fleet
from tests.browser.pages import replaced
from tests.browser.test_approval_page import _first_link
from tests.statemachine.test_batch_approval import batch_fleet

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("alpha", "bravo", "charlie")


def test_approver_decides_two_of_three_renewals_on_the_batch_page(browser, tmp_path):
    event = json.loads((ROOT / "events" / "available.json").read_text(encoding="utf-8"))
    with LocalEngine(fleet=load_fleet(batch_fleet(tmp_path, NAMES))) as engine:
        # GIVEN three executions waiting for web-lead's approval
        runs = {}
        for name in NAMES:
            _, started = engine.put_event(engine.certificate_event(event, name))
            ((execution_name, arn),) = started
            engine.wait_for_state(arn, "Request Approval")
            human.links_when_sent(engine, arn)  # its pending item is recorded by then
            runs[name] = (execution_name, arn)
        link = _first_link(engine, runs["alpha"][1])

        # WHEN the approver opens alpha's link and follows the pointer to the batch page
        browser.get(link)
        assert "2 other pending renewal(s)" in browser.find_element(By.TAG_NAME, "body").text
        browser.find_element(By.LINK_TEXT, "Review them all on one page").click()
        WebDriverWait(browser, 20).until(expected_conditions.url_to_be(link + "/batch"))
        page = browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(tmp_path / "batch-page.png"))
        # THEN all three renewals are listed, and opening the pages decided nothing
        for name in NAMES:
            assert f"{name}.internal.example.com" in page
        assert len(browser.find_elements(By.CSS_SELECTOR, "input[name='item']")) == 3
        assert {engine.status(arn) for _, arn in runs.values()} == {"RUNNING"}

        # WHEN they tick alpha and charlie, give a reason and press Approve selected
        for name in ("alpha", "charlie"):
            label = browser.find_element(By.XPATH, f"//label[text()='{name}.internal.example.com']")
            browser.find_element(By.ID, label.get_attribute("for")).click()
        browser.find_element(By.TAG_NAME, "textarea").send_keys("Batch-approved in a browser")
        batch_page = browser.find_element(By.TAG_NAME, "html")
        browser.find_element(By.CSS_SELECTOR, "button[value='approve']").click()
        WebDriverWait(browser, 20).until(replaced(batch_page))
        browser.save_screenshot(str(tmp_path / "batch-results.png"))
        results = {
            row.find_element(By.XPATH, "td[1]").text: row.find_element(By.XPATH, "td[2]").text
            for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")
        }
        alpha = engine.wait(runs["alpha"][1], name=runs["alpha"][0], seconds=60)
        charlie = engine.wait(runs["charlie"][1], name=runs["charlie"][0], seconds=60)
        bravo_status = engine.status(runs["bravo"][1])

    # THEN the result page says each was approved
    assert results == {
        "alpha.internal.example.com": "Approved",
        "charlie.internal.example.com": "Approved",
    }
    # AND both executions were approved by that person with that reason, and distributed
    for execution in (alpha, charlie):
        assert execution.states[-1] == "Renewal Distributed"
        decision = execution.output["approval_decision"]
        assert decision["approver"] == "web-lead@example.com"
        assert decision["reason"] == "Batch-approved in a browser"
    # AND bravo still waits for a decision
    assert bravo_status == "RUNNING"
