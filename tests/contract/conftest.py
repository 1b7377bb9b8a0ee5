"""The stack as `sam package` leaves it (the ASL file goes to S3), translated once per module.

`translated` is the whole stack: template.yaml with its nested templates (templates/*.yaml:
operations, the install document) inlined by `certrelay.local.nested.whole_stack`, each child
parameter replaced by what the parent passes, so a check reads one template, resources that
moved into a nested template included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from certrelay.local.nested import whole_stack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
NESTED_TEMPLATES = sorted((ROOT / "templates").glob("*.yaml"))
PARAMETERS = {"FallbackOwnerEmail": "security@example.com"}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return whole_stack(
        TEMPLATE,
        PARAMETERS,
        "us-east-1",
        inline_definitions=False,  # as `sam package` leaves it: the ASL file goes to S3
    )
