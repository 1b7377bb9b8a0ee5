"""Handlers stay thin: parse → call certrelay → return a small dict, in at most 40 lines."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
MAX_LINES = 40


def test_every_function_has_a_handler_file():
    assert len(HANDLERS) >= 9


@pytest.mark.parametrize("path", HANDLERS, ids=[p.parent.name for p in HANDLERS])
def test_a_handler_file_is_at_most_40_lines(path: Path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, (
        f"functions/{path.parent.name}/app.py has {lines} lines; move its logic into a "
        f"certrelay module (certrelay.tasks.{path.parent.name}) and keep the handler thin"
    )
