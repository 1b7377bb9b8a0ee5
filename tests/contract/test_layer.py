"""The Lambda layer holds the Lambda code and nothing of the local engine, the CLI or the console.

GIVEN template.yaml's CertrelayLayer, built by `sam build` through src/Makefile, WHEN its code
step (`make layer-code`, the same target `build-CertrelayLayer` runs, without pip) builds into a
temporary folder, THEN python/certrelay holds every module the functions import (and what those
import in turn), the rest of the Lambda code, and no local/, cli/ or console/ code, nor moto.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.templates import read_template

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
NOT_IN_LAYER = ("local", "cli", "console")
ENGINE_ONLY = ("moto", "samtranslator")


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("make") is None:
        pytest.fail("make is needed to build the layer (apt-get install make)")
    artifacts = tmp_path_factory.mktemp("layer")
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(SRC),
            "layer-code",
            f"ARTIFACTS_DIR={artifacts}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return artifacts / "python"


def certrelay_imports(path: Path) -> set[str]:
    """The certrelay modules a file imports (`from certrelay import m` imports certrelay.m)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "certrelay")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "certrelay":
            found.add(node.module or "")
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_the_layer_is_built_by_src_makefile_from_src():
    layer_resource = read_template(ROOT / "template.yaml")["Resources"]["CertrelayLayer"]

    assert layer_resource["Properties"]["ContentUri"] == "src/"
    assert layer_resource["Metadata"]["BuildMethod"] == "makefile"
    makefile = (SRC / "Makefile").read_text(encoding="utf-8")
    assert "build-CertrelayLayer: layer-code layer-requirements" in makefile


def test_every_module_the_functions_import_is_in_the_layer(layer):
    pending = {
        module
        for app in sorted((ROOT / "functions").glob("*/app.py"))
        for module in certrelay_imports(app)
    }
    assert pending, "the functions import nothing from certrelay?"
    seen: set[str] = set()
    missing: list[str] = []
    while pending:
        module = pending.pop()
        seen.add(module)
        path = module_file(layer, module)
        if path is None:
            # `from certrelay.x import name`: a name, not a module, is fine if certrelay.x is there
            if module_file(layer, module.rpartition(".")[0]) is None:
                missing.append(module)
            continue
        pending |= certrelay_imports(path) - seen

    assert not missing, f"imported by the functions but not in the layer: {sorted(missing)}"
    assert "certrelay.triage" in seen  # the walk reached past the handlers' own imports
    assert "certrelay.errors" in seen


def test_the_layer_holds_all_the_lambda_code_and_none_of_the_local_tools(layer):
    package = layer / "certrelay"
    expected = {
        p.relative_to(SRC / "certrelay").as_posix()
        for p in (SRC / "certrelay").rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.relative_to(SRC / "certrelay").parts[0] not in NOT_IN_LAYER
    }
    shipped = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}

    assert shipped == expected
    assert "events.py" in shipped
    for name in NOT_IN_LAYER:
        assert not (package / name).exists(), f"certrelay/{name}/ is in the layer"


def imported_names(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_no_layer_module_imports_the_engines_libraries(layer):
    wrong = [
        f"{path.relative_to(layer)} imports {name}"
        for path in sorted(layer.rglob("*.py"))
        for name in imported_names(path)
        if name.split(".")[0] in ENGINE_ONLY
    ]
    assert not wrong
