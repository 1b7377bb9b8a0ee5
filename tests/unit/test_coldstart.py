"""A function's init runs without the cyclic collector, then freezes what it made and puts the
collector back as it was; invocations run with it."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from certrelay import coldstart

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def collector_on() -> Iterator[None]:
    was, thresholds = gc.isenabled(), gc.get_threshold()
    gc.enable()
    yield
    gc.set_threshold(*thresholds)
    gc.enable() if was else gc.disable()


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """This thread's gc.freeze() calls (the freeze count is the process's: a handler imported by
    a thread an earlier test left running could freeze between two readings)."""
    calls: list[int] = []
    real = gc.freeze

    def freeze() -> None:
        calls.append(threading.get_ident())
        real()

    monkeypatch.setattr(gc, "freeze", freeze)
    return calls


def _frozen_here(calls: list[int]) -> int:
    return calls.count(threading.get_ident())


@pytest.mark.usefixtures("collector_on")
def test_given_the_collector_on_when_init_runs_then_off_inside_and_on_after_same_thresholds():
    gc.set_threshold(700, 10, 10)
    frozen = gc.get_freeze_count()
    with coldstart.init():
        inside = gc.isenabled()
        kept = [{"made": i} for i in range(100)]
    assert inside is False
    assert gc.isenabled() is True
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() >= frozen + len(kept)  # what init made is frozen


@pytest.mark.usefixtures("collector_on")
def test_given_the_collector_off_before_when_init_runs_then_it_stays_off():
    gc.disable()
    with coldstart.init():
        pass
    assert gc.isenabled() is False


@pytest.mark.usefixtures("collector_on")
def test_given_init_fails_when_it_ends_then_the_collector_is_back_on_and_nothing_is_frozen(
    freezes: list[int],
) -> None:
    with pytest.raises(RuntimeError), coldstart.init():
        raise RuntimeError("settings missing")
    assert gc.isenabled() is True
    assert _frozen_here(freezes) == 0


@pytest.mark.usefixtures("collector_on")
def test_given_dependencies_built_once_when_called_again_then_the_same_value_without_a_new_build(
    freezes: list[int],
) -> None:
    seen: list[bool] = []

    @coldstart.once
    def _dependencies() -> object:
        """The clients."""
        seen.append(gc.isenabled())
        return object()

    first = _dependencies()
    assert _dependencies() is first
    assert seen == [False]  # built with the collector off
    assert gc.isenabled() is True
    assert _dependencies.__doc__ == "The clients."
    assert _frozen_here(freezes) == 1
    _dependencies.cache_clear()
    assert _dependencies() is not first
    assert seen == [False, True]  # a rebuild (tests) is not init: collector on, nothing frozen
    assert _frozen_here(freezes) == 1


@pytest.mark.usefixtures("collector_on")
def test_given_the_build_fails_when_called_again_then_it_builds_again():
    calls: list[int] = []

    @coldstart.once
    def _dependencies() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("APPROVAL_TABLE_NAME")
        return len(calls)

    with pytest.raises(KeyError):
        _dependencies()
    assert gc.isenabled() is True
    assert _dependencies() == 2


def test_given_a_handler_imported_in_a_fresh_interpreter_then_the_collector_is_on_as_default():
    """GIVEN the notify handler (no AWS call at import) WHEN a fresh interpreter imports it THEN
    the collector is on, with the interpreter's default thresholds, and the import froze objects."""
    code = (
        "import gc, importlib.util, sys\n"
        "default = gc.get_threshold()\n"
        "spec = importlib.util.spec_from_file_location('app', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(gc.isenabled(), gc.get_threshold() == default, gc.get_freeze_count() > 10000)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "functions" / "notify" / "app.py")],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "POWERTOOLS_SERVICE_NAME": "test"},
    )
    assert done.stdout.split() == ["True", "True", "True"]
