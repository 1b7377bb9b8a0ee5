"""The events-out schema the functions check details against (certrelay.announce) is the
models' own (certrelay.announcements), compiled: `python -m certrelay.announcements --write`."""

from __future__ import annotations

from certrelay import announcements


def test_the_compiled_schema_is_the_models_schema():
    assert announcements.main(["--check"]) == 0
