"""Settings every test shares."""

from __future__ import annotations

from pathlib import Path

import pytest

# moto with several accounts (the hub's cross-account tests): the `accounts` fixture.
from tests.functional.org_accounts import accounts  # noqa: F401


@pytest.fixture(autouse=True)
def kept_runs_in_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`certrelay local run` and the demo keep their executions for `certrelay history`: in a
    test, under the test's own directory, never in the user's ~/.local/state."""
    monkeypatch.setenv("CERTRELAY_STATE_DIR", str(tmp_path / "state"))
