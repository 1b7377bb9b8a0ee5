"""Walking an Amazon States Language definition (shared by the engine's tools and the tests)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def all_states(states: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state of a definition, with those inside Map and Parallel states (depth first)."""
    for name, state in states.items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from all_states(processor.get("States") or {})
        for branch in state.get("Branches") or []:
            yield from all_states(branch.get("States") or {})
