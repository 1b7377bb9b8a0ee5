"""The Lambda layer carries bytecode: /opt is read-only on Lambda, so a module without its .pyc is
compiled again at every cold start.

GIVEN src/Makefile's layer-code and layer-bytecode steps (build-CertrelayLayer runs both, with
the runtime's Python; here with this interpreter) WHEN they build into a temporary folder THEN
every certrelay module has an unchecked-hash .pyc for that interpreter, and Python loads it even
when the sources' times have changed (as unpacking a layer changes them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked
ZIP_EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can hold


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("make") is None:
        pytest.fail("make is needed to build the layer (apt-get install make)")
    artifacts = tmp_path_factory.mktemp("layer")
    settings = [f"ARTIFACTS_DIR={artifacts}", f"LAYER_COMPILER={sys.executable}"]
    subprocess.run(
        ["make", "--no-print-directory", "-C", str(SRC), "layer-code", "layer-bytecode", *settings],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return artifacts / "python"


def test_the_layer_build_compiles_after_installing():
    makefile = (SRC / "Makefile").read_text(encoding="utf-8")
    rule = re.search(r"^build-CertrelayLayer:(.*)$", makefile, re.MULTILINE)
    assert rule is not None
    assert rule[1].split() == ["layer-code", "layer-requirements", "layer-bytecode"]


def test_every_layer_module_has_unchecked_hash_bytecode(layer: Path):
    tag = sys.implementation.cache_tag
    modules = sorted((layer / "certrelay").rglob("*.py"))
    assert modules
    for module in modules:
        compiled = module.parent / "__pycache__" / f"{module.stem}.{tag}.pyc"
        assert compiled.is_file(), f"no bytecode for {module.relative_to(layer)}"
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        assert flags == UNCHECKED_HASH, f"{compiled.name}: flags {flags:#b}"


def test_the_bytecode_is_used_when_the_sources_times_change(layer: Path):
    # GIVEN the sources' times changed after compiling (a layer's zip keeps 1980-style DOS times)
    for module in (layer / "certrelay").rglob("*.py"):
        os.utime(module, (ZIP_EPOCH, ZIP_EPOCH))
    # WHEN a module is imported from the layer, writing no bytecode (as on read-only /opt)
    done = subprocess.run(
        [sys.executable, "-v", "-c", "import certrelay.reasons"],
        env={**os.environ, "PYTHONPATH": str(layer), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    # THEN its code comes from the layer's .pyc, not from compiling the source
    compiled = layer / "certrelay" / "__pycache__" / f"reasons.{sys.implementation.cache_tag}.pyc"
    assert f"code object from '{compiled}'" in done.stderr
