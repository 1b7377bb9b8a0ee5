"""Handlers stay thin: parse → call certrelay → return a small dict, in at most 40 lines."""

from __future__ import annotations

import ast
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


@pytest.mark.parametrize("path", HANDLERS, ids=[p.parent.name for p in HANDLERS])
def test_a_handler_has_one_init_hook_that_the_cold_start_bench_calls(path: Path):
    """GIVEN a handler file WHEN its top-level functions are read THEN `_dependencies()` is one of
    them, taking no argument: bench/run.py times import + `_dependencies()` as the cold start
    (settings, profiles and every boto3 client the handler uses), so none is measured on its
    import alone."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hooks = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == "_dependencies"
    ]
    assert len(hooks) == 1, f"functions/{path.parent.name}/app.py has no _dependencies()"
    given = hooks[0].args
    every = (*given.posonlyargs, *given.args, *given.kwonlyargs, given.vararg, given.kwarg)
    taken = [argument.arg for argument in every if argument is not None]
    assert taken == [], f"functions/{path.parent.name}/app.py: _dependencies() takes {taken}"
