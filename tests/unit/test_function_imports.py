"""A function's cold start imports botocore, not boto3: its clients are botocore's
(certrelay.clients) and its DynamoDB items are mapped by certrelay.attribute_values, so nothing
brings in boto3's package (s3transfer, concurrent.futures' process pool, multiprocessing).

GIVEN every handler, WHEN it is imported and its `_dependencies()` built the way bench/run.py
measures a cold start (its child, its Lambda environment, its local answers to the two AWS calls
made at init), THEN after each handler neither boto3 nor s3transfer has been imported.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(ROOT.glob("functions/*/app.py"))
EACH_HANDLER_IN_TURN = """
import importlib.util, json, sys
imported = {}
for number, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"handler_{number}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module._dependencies()
    imported[path] = sorted(name for name in ("boto3", "s3transfer") if name in sys.modules)
print(json.dumps(imported))
"""


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_given_every_handler_when_its_cold_start_runs_then_boto3_is_not_imported():
    run = bench()
    with run.init_calls_stub() as answers:
        done = run.child(EACH_HANDLER_IN_TURN, *map(str, HANDLERS), env=answers)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(imported) == len(HANDLERS) >= 11
    first = next(((path, names) for path, names in imported.items() if names), None)
    assert first is None, f"{first[0]}'s init imports {first[1]} (the handlers before it do not)"
