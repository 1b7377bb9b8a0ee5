"""Templates as the tests read them: each file parsed once per test process.

`certrelay.local.template.load_sam` parses with PyYAML's pure-Python loader (samtranslator's
tags), 0.3-0.5 s for template.yaml; some thirty tests read the same files. Each call returns
its own copy, so a test may change what it got; the cache is keyed by the file's size and
modification time, so an edited file is read again.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from certrelay.local.template import load_sam


def read_template(path: Path) -> dict[str, Any]:
    """load_sam(path), parsed once per process for an unchanged file; a copy of its own."""
    stat = path.stat()
    return copy.deepcopy(_parsed(path.resolve(), stat.st_size, stat.st_mtime_ns))


@functools.cache
def _parsed(path: Path, size: int, modified_ns: int) -> dict[str, Any]:
    return load_sam(path)
