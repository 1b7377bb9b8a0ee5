"""What the browser tests share about a page replaced under them (a form posted, a page that
refreshes itself): selenium says so with StaleElementReferenceException, but an element asked
about just as its document is replaced gets chromedriver's inspector error instead, a plain
WebDriverException (seen under load, on clicks and on `staleness_of`'s own check)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.remote.webelement import WebElement


def stale(error: WebDriverException) -> bool:
    """The error says the element's document is gone."""
    return isinstance(error, StaleElementReferenceException) or (
        "does not belong to the document" in (error.msg or "")
    )


def replaced(element: WebElement) -> Callable[[Any], bool]:
    """selenium's `staleness_of(element)`, with chromedriver's inspector error taken as the
    replaced document it reports; any other error still fails the wait."""

    def condition(_driver: Any) -> bool:
        try:
            element.is_enabled()
        except WebDriverException as error:
            if stale(error):
                return True
            raise
        return False

    return condition
