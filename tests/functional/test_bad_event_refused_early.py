"""`certrelay local run` refuses a bad event at once: before the engine, moto or a deploy.

GIVEN an event the stack would never take (issue 14's example: an ACM event with no detail),
WHEN `certrelay local run EVENT.json` runs in a fresh interpreter, THEN it exits 2 with one line
naming the problem, and neither the engine nor moto nor the SAM translator was even imported,
so nothing was deployed (it used to deploy the whole stack first: 10-15 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOADED = "certrelay.local.engine", "certrelay.local.stack", "moto", "samtranslator"
RUN = f"""
import json, sys
from certrelay.cli.main import main
status = main(["local", "run", sys.argv[1]])
loaded = [name for name in {LOADED!r} if name in sys.modules]
print(json.dumps({{"status": status, "loaded": loaded}}))
"""


def sample(name: str) -> dict[str, object]:
    return dict(json.loads((ROOT / "events" / name).read_text(encoding="utf-8")))


def without(event: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in event.items() if k != key}


@pytest.mark.parametrize(
    ("case", "event", "fragment"),
    [
        ("no detail", without(sample("expired.json"), "detail"), "detail"),
        ("no resources", without(sample("expired.json"), "resources"), "no resources"),
        ("another source", {**sample("expired.json"), "source": "aws.s3"}, "not 'aws.acm'"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else "",
)
def test_a_bad_event_is_refused_before_the_engine_or_moto_is_loaded(
    tmp_path: Path, case: str, event: dict[str, object], fragment: str
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    done = subprocess.run(
        [sys.executable, "-c", RUN, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )

    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"status": 2, "loaded": []}, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("certrelay: "), line
    assert fragment in line, line
