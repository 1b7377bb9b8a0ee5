"""Fixtures of the functional tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.cli_helpers import EnginePool


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within each module here, the tests that take `reused_engines` run first, so the pooled
    engine serves them all before a test that may start its own stops it (the order is
    otherwise kept; each test starts from a fresh engine's state either way)."""
    here = Path(__file__).parent
    modules: dict[Path, int] = {}
    for item in items:
        modules.setdefault(item.path, len(modules))

    def key(item: pytest.Item) -> tuple[int, int]:
        pooled = item.path.parent == here and "reused_engines" in getattr(item, "fixturenames", ())
        return modules[item.path], 0 if pooled else 1

    items.sort(key=key)


@pytest.fixture(scope="module")
def engine_pool() -> Iterator[EnginePool]:
    pool = EnginePool()
    yield pool
    pool.stop()


@pytest.fixture
def reused_engines(engine_pool: EnginePool, monkeypatch: pytest.MonkeyPatch) -> EnginePool:
    """The CLI's `LocalEngine(...)` in this test takes the module's pooled engine."""
    monkeypatch.setattr("certrelay.local.engine.LocalEngine", engine_pool.engine_class())
    return engine_pool


@pytest.fixture(autouse=True)
def no_pooled_engine_beside_ones_own(
    request: pytest.FixtureRequest, engine_pool: EnginePool
) -> None:
    """A test that does not take `reused_engines` may start its own: the pooled one stops."""
    if "reused_engines" not in request.fixturenames:
        engine_pool.stop()
