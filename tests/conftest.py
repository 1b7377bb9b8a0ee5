"""Settings every test shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore import loaders

# moto with several accounts (the hub's cross-account tests): the `accounts` fixture.
from tests.functional.org_accounts import accounts  # noqa: F401


@pytest.fixture(autouse=True)
def kept_runs_in_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`certrelay local run` and the demo keep their executions for `certrelay history`: in a
    test, under the test's own directory, never in the user's ~/.local/state."""
    monkeypatch.setenv("CERTRELAY_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="session", autouse=True)
def aws_models_parsed_once_per_process() -> Iterator[None]:
    """botocore keeps the service models it parsed in its Loader, one per session, and moto
    begins every mock with a new default session: each test re-read and re-parsed the JSON
    models of every client it made (about a third of a moto test's time). Loaders with the same
    search paths share one cache for the test process, as one long-lived session would; the
    models are the same files, read once."""
    shared: dict[tuple[str, ...], dict[Any, Any]] = {}
    original = loaders.Loader.__init__

    def sharing(self: loaders.Loader, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._cache = shared.setdefault(tuple(self.search_paths), {})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loaders.Loader, "__init__", sharing)
        yield
