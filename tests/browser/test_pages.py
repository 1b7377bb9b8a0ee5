"""The browser tests' wait for a replaced page: chromedriver's inspector error counts as the
replaced document it reports, as selenium's StaleElementReferenceException does; any other
error still fails the wait, and a live element keeps it waiting."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

from tests.browser.pages import replaced

INSPECTOR = (
    'unknown error: unhandled inspector error: {"code":-32000,'
    '"message":"Node with given id does not belong to the document"}'
)


class _Element:
    def __init__(self, error: WebDriverException | None) -> None:
        self.error = error

    def is_enabled(self) -> bool:
        if self.error is not None:
            raise self.error
        return True


@pytest.mark.parametrize(
    "error",
    [WebDriverException(INSPECTOR), StaleElementReferenceException("stale element reference")],
)
def test_given_the_document_replaced_when_asked_then_the_wait_ends(
    error: WebDriverException,
) -> None:
    assert replaced(_Element(error))(None) is True


def test_given_the_element_still_there_when_asked_then_the_wait_goes_on() -> None:
    assert replaced(_Element(None))(None) is False


def test_given_another_browser_error_when_asked_then_the_wait_fails_with_it() -> None:
    with pytest.raises(WebDriverException, match="chrome not reachable"):
        replaced(_Element(WebDriverException("chrome not reachable")))(None)
