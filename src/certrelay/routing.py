"""State-name routing: a function that serves several Task states holds one table of them.

Each Task state's payload carries `"state.$": "$$.State.Name"`; the handler looks that name up
in its table `{state name: the callable implementing it}` and calls what it finds, so every
state is one hop from its code. tests/contract/test_state_routing.py holds the tables to the ASL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from certrelay.errors import UnknownState

Task = TypeVar("Task")


def route(table: Mapping[str, Task], event: Mapping[str, Any]) -> Task:
    """The callable `table` holds for the event's state name; UnknownState for any other name."""
    state = event.get("state")
    if not isinstance(state, str) or state not in table:
        known = ", ".join(sorted(table))
        raise UnknownState(f"no code here for state {state!r}; this function serves: {known}")
    return table[state]
