"""Running the CLI in-process and checking its one-line errors (shared by the CLI tests)."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import pytest

from certrelay.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`certrelay ARGS...` in this process: (exit status, stdout, stderr)."""
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    """Bad input: exit status 2, one line on stderr naming the problem, no traceback."""
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


class EnginePool:
    """One started engine that in-process CLI runs take in turn (`reused_engines`): the first
    `LocalEngine(...)` with given settings starts it; a later one with the same settings gets it
    reset (LocalEngine.reset: observably a fresh engine, as
    tests/statemachine/test_engine_reset.py proves) instead of a new deployment; one with other
    settings stops it and starts its own. Leaving the `with` block keeps it for the next run."""

    def __init__(self) -> None:
        from certrelay.local.engine import LocalEngine

        self._real = LocalEngine  # the class itself: tests patch the module's name
        self._exits = contextlib.ExitStack()
        self._engine: Any = None
        self._settings: str | None = None
        self._stdout: Any = None

    def engine_class(self) -> type:
        pool, LocalEngine = self, self._real

        class Reused(LocalEngine):  # type: ignore[misc,valid-type]
            def __init__(self, **settings: Any) -> None:
                super().__init__(**settings)
                self._settings = json.dumps(
                    {
                        k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v
                        for k, v in settings.items()
                    },
                    sort_keys=True,
                    default=str,
                )

            def __enter__(self) -> Any:
                return pool._take(self, self._settings)

            def __exit__(self, *exc: object) -> None:
                """Kept, started, for the next run (the pool stops it)."""
                pool._returned()

        return Reused

    def _take(self, new: Any, settings: str) -> Any:
        from certrelay.local.lambdas import _HandlerStdout

        if self._engine is not None and settings == self._settings:
            try:
                self._engine.reset()
            except Exception:  # this run errors; the next one gets a new engine
                self.stop()
                raise
            # the engine sent its handlers' prints to their log as it started; capsys has
            # replaced sys.stdout for this test since: send them there again while it runs
            if not isinstance(sys.stdout, _HandlerStdout):
                self._stdout = sys.stdout
                sys.stdout = _HandlerStdout(sys.stdout)
            return self._engine
        self.stop()
        self._real.__enter__(new)  # the real start-up
        self._exits.callback(self._real.__exit__, new, None, None, None)
        self._engine, self._settings = new, settings
        return new

    def _returned(self) -> None:
        if self._stdout is not None:
            sys.stdout, self._stdout = self._stdout, None

    def stop(self) -> None:
        self._exits.close()
        self._engine = self._settings = None
