"""A function's cold start imports botocore, not boto3, unless it maps DynamoDB items: its
clients are botocore's (certrelay.clients), so nothing else brings in boto3's package
(s3transfer, concurrent.futures' process pool, multiprocessing). The functions that read or write
approval records map them with boto3's own TypeSerializer and TypeDeserializer
(certrelay.approval_records), which imports the package: that is the one way in allowed.

GIVEN each handler, WHEN it is imported and its `_dependencies()` built the way bench/run.py
measures a cold start (its own child, its Lambda environment, its local answers to the two AWS
calls made at init), THEN boto3 is not imported, or only with certrelay.approval_records and
boto3.dynamodb.types.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(ROOT.glob("functions/*/app.py"))
COLD_START = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
module._dependencies()
names = ("boto3", "s3transfer", "boto3.dynamodb.types", "certrelay.approval_records",
    "email_validator", "certrelay.profiles")
print(json.dumps([name for name in names if name in sys.modules]))
"""


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def cold_start(app: Path) -> subprocess.CompletedProcess[str]:
    """`app`'s cold start in a child of its own, run once for this module's tests: each reads
    what it checks (the modules the init imported) from the same run."""
    run = bench()
    with run.init_calls_stub() as answers:
        return run.child(COLD_START, str(app), env=answers)


def imported_at_init(app: Path) -> set[str]:
    """Which of COLD_START's watched modules `app`'s cold start imported (it must succeed)."""
    done = cold_start(app)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("app", HANDLERS, ids=lambda app: app.parent.name)
def test_given_a_handler_when_its_cold_start_runs_then_boto3_comes_only_with_approval_records(
    app: Path,
):
    imported = imported_at_init(app)
    if "boto3" in imported or "s3transfer" in imported:
        assert {"boto3.dynamodb.types", "certrelay.approval_records"} <= imported, (
            f"{app.parent.name}'s init imports {sorted(imported)}: boto3 other than for "
            "approval records' attribute values"
        )


@pytest.mark.parametrize("name", ["export", "distribute"])
def test_given_a_function_that_checks_no_address_when_its_cold_start_runs_then_no_email_validator(
    name: str,
):
    """Export and distribute read the deployed profiles as the build validated them
    (certrelay.profiles.trusted_profiles): nothing on their path checks an address, so
    email-validator (pydantic's EmailStr; 20-40 ms of import) stays out of their cold start."""
    assert "email_validator" not in imported_at_init(ROOT / "functions" / name / "app.py")


def test_given_request_approval_when_its_cold_start_runs_then_no_profile_models_are_imported():
    """Request approval checks the approvers' addresses it is handed (certrelay.owners) and reads
    no profile: the profile models (certrelay.profiles) stay out of its cold start."""
    imported = imported_at_init(ROOT / "functions" / "request_approval" / "app.py")
    assert "email_validator" in imported
    assert "certrelay.profiles" not in imported


def test_there_are_handlers_to_check():
    assert len(HANDLERS) >= 11


# After init, one call's worth of each handler's per-call validation, with pydantic's schema
# generation spied on: the models wait for first use (defer_build), so a model the init did not
# build would be built here, in the first invocation.
FIRST_CALLS = """
import importlib.util, json, sys
import pydantic._internal._generate_schema as generate
name = sys.argv[1]
spec = importlib.util.spec_from_file_location("handler", f"functions/{name}/app.py")
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
module._dependencies()
built = []
real = generate.GenerateSchema.generate_schema
def spy(self, obj, *args, **kwargs):
    built.append(getattr(obj, "__name__", repr(obj)[:60]))
    return real(self, obj, *args, **kwargs)
generate.GenerateSchema.generate_schema = spy
from certrelay import announcements, events, workflow
event = json.loads(open("events/expired.json").read())
facts = {"arn": event["resources"][0], "domain": "example.com", "type": "IMPORTED",
    "status": "ISSUED", "serial": "01", "not_after": "2030-01-01T00:00:00Z",
    "days_to_expiry": 3, "in_use": False}
common = {"schema_version": "1", "execution": "arn", "certificate": facts,
    "event_kind": "Expired", "route": "attention", "profile": None}
if name == "triage":
    events.parse_event(event)
if name == "findings":
    details = [{**common, "outcome": "finding-raised", "problem": "expired", "severity": "HIGH",
        "finding_ids": ["f"]}, {**common, "outcome": "finding-resolved", "finding_ids": ["f"]}]
if name == "request_approval":
    details = [{**common, "outcome": "approval-requested", "round": "request",
        "approvers": ["a@example.com"], "expires_at": "2030-01-01T00:00:00Z",
        "approval_reason": "PolicyHuman"}]
if name in ("findings", "request_approval"):
    class Bus:  # EventBridge taking every entry
        def put_events(self, Entries):
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}] * len(Entries)}
    for detail in details:
        announcements.announce(Bus(), detail)
if name in ("triage", "distribute"):  # what a call dumps of the deployed profiles
    import os
    from certrelay.profiles import load_profiles_file
    deployed = load_profiles_file(os.environ["PROFILES_FILE"]).values()
    windows = [p.window for p in deployed if p.window is not None and name == "triage"]
    targets = [t for p in deployed for t in p.targets if name == "distribute"]
    assert windows or targets, "the deployed profiles have a window and targets to dump"
    for window in windows:
        window.model_dump(mode="json")
    for target in targets:
        target.model_dump(mode="json", exclude_none=True)
if name == "distribute":
    item = {"certificate_arn": event["resources"][0], "serial": "01", "profile": "web",
        "target": {"id": "web#1", "kind": "s3"}}
    for model in (workflow.ItemRequest, workflow.InstallRequest):
        try:
            workflow.parse_request({"state": "Copy To Bucket", "execution": "arn", "item": item},
                model, None)
        except Exception:
            pass  # a refused request was validated all the same
print(json.dumps(built))
"""


@pytest.mark.parametrize("name", ["triage", "findings", "request_approval", "distribute"])
def test_given_a_handler_after_init_when_a_call_validates_its_payload_then_no_model_is_built(name):
    run = bench()
    with run.init_calls_stub() as answers:
        done = run.child(FIRST_CALLS, name, env=answers)
    assert done.returncode == 0, done.stderr[-2000:]
    built = json.loads(done.stdout.strip().splitlines()[-1])
    assert built == [], f"{name}'s first call builds {built[:5]}: build them in its init"
