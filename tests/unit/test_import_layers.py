"""The package's layers, read from the sources: who may import whom, and no import cycle.

  certrelay.cli          the command line          may import console, local, the core
  certrelay.console      the console, the history  may import local, the core
  certrelay.local        the engine on moto        may import local.fleet, the core
  certrelay.local.fleet  the demo fleet, servers   may import the core
  certrelay (the rest)   the Lambda code           imports none of the above, nor moto

GIVEN every module under src/certrelay, WHEN its imports are read with `ast` (those inside
functions and under TYPE_CHECKING too), THEN each points down or sideways, the module graph has
no cycle, and imports wait inside functions only at the CLI's one boundary, each saying why.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "certrelay"
LAYERS = ("certrelay.cli", "certrelay.console", "certrelay.local", "certrelay.local.fleet")
RANK = {"certrelay": 0, "certrelay.local.fleet": 1, "certrelay.local": 2}
RANK |= {"certrelay.console": 3, "certrelay.cli": 4}
LAZY_BOUNDARY = "certrelay.cli.main"  # where `certrelay demo` etc. load the engine on demand
# The only other module that may import inside a function: the SAM translator (0.25 s) is loaded
# only on a cache miss, never when the translation comes from the engine's disk cache.
LAZY_ALSO = {"certrelay.local.template": "samtranslator"}
HEAVY = ("moto", "samtranslator")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    """The layer a certrelay module belongs to: the longest package prefix in LAYERS."""
    found = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return max(found, key=len, default="certrelay")


def imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement loads (`from p import m` loads p.m when m is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: resolve against the importing module's package
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".rstrip(".")
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [name if name in MODULES else base for name in names]


def imports_of(module: str, *, types: bool = True) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Each import and what it loads; with `types=False`, not those under `if TYPE_CHECKING:`."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for_types = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    return [
        (node, target)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and (types or id(node) not in for_types)
        for target in imported(module, node)
    ]


def graph(*, types: bool = True) -> dict[str, set[str]]:
    """certrelay module -> the certrelay modules it imports."""
    return {
        module: {t for _, t in imports_of(module, types=types) if t in MODULES and t != module}
        for module in MODULES
    }


def in_functions(module: str) -> list[ast.Import | ast.ImportFrom]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    return [
        node
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]


def test_the_layers_are_all_found():
    for name in LAYERS:
        assert name in MODULES, f"{name} is not a package under src/"
    assert "certrelay.local.engine" in MODULES
    assert "certrelay.cli.main" in MODULES
    assert "certrelay.console.history" in MODULES


def test_every_import_points_down_or_sideways():
    wrong = [
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module, targets in graph().items()
        for target in sorted(targets)
        if RANK[layer(target)] > RANK[layer(module)]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_lambda_code_imports_neither_moto_nor_the_sam_translator():
    wrong = [
        f"{module} imports {target}"
        for module in MODULES
        if layer(module) == "certrelay"
        for _, target in imports_of(module)
        if target.split(".")[0] in HEAVY
    ]
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_itself_through_others():
    """At run time: a cycle through imports for type hints only (TYPE_CHECKING) is harmless."""
    try:
        tuple(TopologicalSorter(graph(types=False)).static_order())
    except CycleError as error:
        pytest.fail(f"an import cycle: {' -> '.join(error.args[1])}")


def test_packages_do_not_import_each_other_in_a_circle():
    packages: dict[str, set[str]] = {}
    for module, targets in graph().items():
        packages.setdefault(layer(module), set()).update(
            layer(t) for t in targets if layer(t) != layer(module)
        )
    try:
        tuple(TopologicalSorter(packages).static_order())
    except CycleError as error:
        pytest.fail(f"a package cycle: {' -> '.join(error.args[1])}")


@pytest.mark.parametrize("module", [m for m in MODULES if layer(m) != "certrelay"])
def test_imports_wait_inside_functions_only_at_the_cli_boundary_and_say_why(module):
    lines = MODULES[module].read_text(encoding="utf-8").splitlines()
    hidden = in_functions(module)
    if module in LAZY_ALSO:  # only that package, nothing else
        hidden_elsewhere = [
            n for n in hidden if not (getattr(n, "module", "") or "").startswith(LAZY_ALSO[module])
        ]
        assert not hidden_elsewhere, f"{module}: only {LAZY_ALSO[module]} may wait"
    elif module != LAZY_BOUNDARY:
        assert not hidden, f"{module}: move to the top: " + ", ".join(
            f"line {n.lineno}" for n in hidden
        )
    for node in hidden:  # the reason on its line, or on one of the two lines above
        said = lines[max(0, node.lineno - 3) : node.lineno]
        assert any("# lazy:" in line for line in said), (
            f"{module} line {node.lineno}: a lazy import says why (# lazy: …) on it or above"
        )


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.endswith("__main__")))
def test_each_module_imports(module):
    importlib.import_module(module)


def test_the_command_line_starts_without_moto_or_the_sam_translator():
    code = (
        "import sys, certrelay.cli.main; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
