"""Fixtures of the functional tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from certrelay.local import moto_fixes_speed
from tests.functional.cli_helpers import EnginePool
from tests.shared_first import sharing_tests_first


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within each module here, the tests that take `reused_engines` run first."""
    sharing_tests_first(items, Path(__file__).parent, "reused_engines")


# The module that holds each speed fix to the answers moto gives without it.
UNFIXED_MOTO = {"tests.functional.test_moto_fixes_speed"}


@pytest.fixture(scope="module", autouse=True)
def moto_as_the_engine_runs_it(request: pytest.FixtureRequest) -> Iterator[None]:
    """The tests' own mock_aws runs with the engine's speed fixes to moto
    (moto_fixes_speed.applied(): the same answers, less work; test_moto_fixes_speed.py, which
    compares moto with and without them, runs without). A module's whole run, set up before
    its module-scoped engines and ended after them, so the engine's own nested fixes end first."""
    if request.module.__name__ in UNFIXED_MOTO:
        yield
        return
    with moto_fixes_speed.applied():
        yield


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
