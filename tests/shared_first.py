"""Test order for a directory whose modules share one engine: within each module, the tests that
take the shared engine's fixture run first, so one deployment serves them all before a test that
starts an engine of its own stops it. The order is otherwise kept; every test starts from a fresh
engine's state either way (LocalEngine.reset())."""

from __future__ import annotations

from pathlib import Path

import pytest


def sharing_tests_first(items: list[pytest.Item], directory: Path, fixture: str) -> None:
    """Sort `items` in place: per module, in collection order, the ones under `directory` that
    take `fixture` before the rest."""
    modules: dict[Path, int] = {}
    for item in items:
        modules.setdefault(item.path, len(modules))

    def key(item: pytest.Item) -> tuple[int, int]:
        sharing = item.path.parent == directory and fixture in getattr(item, "fixturenames", ())
        return modules[item.path], 0 if sharing else 1

    items.sort(key=key)
