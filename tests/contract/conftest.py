"""The template as `sam package` leaves it (the ASL file goes to S3), translated once per module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from certrelay.local.template import translate

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate(
        TEMPLATE,
        {"FallbackOwnerEmail": "security@example.com"},
        "us-east-1",
        inline_definitions=False,  # as `sam package` leaves it: the ASL file goes to S3
    ).cloudformation
