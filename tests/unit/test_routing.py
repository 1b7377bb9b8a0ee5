"""State-name routing: a payload's `state` picks the callable from its function's table."""

from __future__ import annotations

import pytest

from certrelay.errors import UnknownState
from certrelay.routing import route

TABLE = {"Copy To Bucket": "copy", "Cancel Install": "cancel"}


def test_a_listed_state_name_picks_its_callable() -> None:
    # GIVEN a payload from Cancel Install WHEN routed THEN Cancel Install's code is chosen
    assert route(TABLE, {"state": "Cancel Install", "item": {}}) == "cancel"


@pytest.mark.parametrize("event", [{"state": "Find Window"}, {}, {"state": None}, {"state": 3}])
def test_an_unlisted_or_missing_state_name_is_a_typed_error_never_retried(event: dict) -> None:
    # WHEN a payload names no state of the table THEN UnknownState, one line, naming the table
    with pytest.raises(UnknownState, match="Cancel Install, Copy To Bucket") as caught:
        route(TABLE, event)
    assert "\n" not in str(caught.value)
    assert not caught.value.retryable
