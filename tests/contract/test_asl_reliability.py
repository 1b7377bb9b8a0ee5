"""The ASL's reliability contract, strictly (REL-06, REL-07) and its schema (STA-01).

Every Lambda task retries what Lambda itself throws, with capped exponential backoff and full
jitter, and ends its Catch list with States.ALL. certrelay's business errors are never retried and
are routed before that last catch-all. The file also passes the Step Functions schema cfn-lint
ships (E3601), which cfn-lint never applies here because the definition sits in a separate file.
"""

from __future__ import annotations

import inspect
import json
import re
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from annotated_types import Ge, Le

from certrelay import errors, profiles, windows
from certrelay.local.asl import all_states
from tests.templates import read_template

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachines" / "certificate_lifecycle.asl.json"
LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
RETRY_EVERYTHING = {"States.ALL", "States.TaskFailed"}
ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def substitutions() -> dict[str, str]:
    """Each `${Name}` of the ASL as CloudFormation would fill it in, in one account and region."""
    sam = read_template(ROOT / "template.yaml")
    properties = sam["Resources"]["CertificateLifecycleStateMachine"]["Properties"]
    return {
        name: _resolve(value, sam["Resources"])
        for name, value in properties["DefinitionSubstitutions"].items()
    }


def _resolve(value: Any, template_resources: dict[str, Any]) -> str:
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for pseudo, actual in (("Partition", "aws"), ("Region", REGION), ("AccountId", ACCOUNT)):
            text = text.replace("${AWS::" + pseudo + "}", actual)
        assert "${" not in text, text
        return str(text)
    name = value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value["Ref"]
    kind = template_resources.get(name, {}).get("Type", "parameter")
    return {
        "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
        "AWS::DynamoDB::Table": f"stack-{name}",
        "parameter": "security@example.com",
    }[kind]


def _field_bound(model: type[Any], field: str, kind: type[Ge | Le]) -> int:
    """The `ge=` or `le=` bound pydantic holds for a model's field."""
    metadata = model.model_fields[field].metadata
    (bound,) = [m.ge if isinstance(m, Ge) else m.le for m in metadata if isinstance(m, kind)]
    return int(bound)


def _longest_window_wait() -> timedelta:
    """The longest Wait For Window can sleep: a one-minute weekly window that just closed."""
    window = {"days": ["mon"], "start": "00:00", "end": "00:01", "timezone": "UTC"}
    just_closed = datetime(2026, 11, 30, 0, 1, tzinfo=UTC)  # a Monday, 00:01
    opens = windows.next_opening(window, just_closed)
    assert opens is not None
    return opens - just_closed


def business_errors() -> set[str]:
    """errors.py's classes that retrying cannot fix: the ASL routes them, never retries them."""
    return {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.CertrelayError)
        and cls is not errors.CertrelayError
        and not cls.retryable
    }


def lambda_tasks(asl: dict[str, Any], substitutions: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every Task that calls Lambda, inside Map states too, by the ARN its Resource becomes."""
    found = {}
    for name, state in all_states(asl["States"]):
        if state["Type"] != "Task":
            continue
        resource = state["Resource"]
        placeholder = re.fullmatch(r"\$\{(\w+)\}", resource)
        arn = substitutions[placeholder.group(1)] if placeholder else resource
        if ":lambda:" in arn:  # lambda:invoke[.waitForTaskToken] or a function ARN
            found[name] = state
    return found


def test_every_lambda_task_retries_the_four_lambda_errors_with_capped_jittered_backoff(
    asl, substitutions
):
    """REL-06: Lambda's own transient errors (service, SDK, throttling) are retried on every
    Lambda task with BackoffRate >= 2, FULL jitter and a MaxDelaySeconds cap."""
    tasks = lambda_tasks(asl, substitutions)

    assert len(tasks) >= 10, sorted(tasks)
    for name, task in tasks.items():
        rules = [r for r in task.get("Retry", []) if set(r["ErrorEquals"]) >= LAMBDA_ERRORS]
        assert rules, f"{name}: no Retry lists all of {sorted(LAMBDA_ERRORS)}"
        for rule in rules:
            assert rule.get("BackoffRate", 2.0) >= 2, name
            assert rule.get("JitterStrategy") == "FULL", name
            assert rule.get("MaxAttempts", 3) >= 2, name
            assert rule.get("MaxDelaySeconds", 0) > rule.get("IntervalSeconds", 1), name


def test_every_lambda_task_and_map_ends_its_catch_list_with_states_all(asl, substitutions):
    """REL-06: whatever a Lambda task or a Map (its items' failures) throws is caught last by
    States.ALL, with the error kept beside the input, so no run dies unreported."""
    catchers = dict(lambda_tasks(asl, substitutions))
    catchers |= {n: s for n, s in all_states(asl["States"]) if s["Type"] == "Map"}

    for name, state in catchers.items():
        catches = state.get("Catch", [])
        assert catches, f"{name} has no Catch"
        assert catches[-1]["ErrorEquals"] == ["States.ALL"], name
        assert catches[-1].get("ResultPath"), name
        assert all("States.ALL" not in c["ErrorEquals"] for c in catches[:-1]), name


def test_business_errors_are_never_retried_and_are_routed_before_the_catch_all(asl):
    """REL-07: an error class from errors.py that retrying cannot fix appears in no Retry (nor is
    swept into one by States.ALL / States.TaskFailed), and where a state catches it by name, that
    catch comes before the States.ALL one so it takes its own path."""
    business = business_errors()
    routed: set[str] = set()

    assert {"MalformedEvent", "ApprovalRejected", "ExportRefused"} <= business
    for name, state in all_states(asl["States"]):
        for rule in state.get("Retry", []):
            retried = set(rule["ErrorEquals"])
            assert not retried & business, f"{name} retries {sorted(retried & business)}"
            assert not retried & RETRY_EVERYTHING, f"{name} retries every error"
        catches = [set(c["ErrorEquals"]) for c in state.get("Catch", [])]
        last = next((i for i, c in enumerate(catches) if "States.ALL" in c), len(catches))
        for index, caught in enumerate(catches):
            named = caught & business
            routed |= named
            assert not named or index < last, f"{name}: {sorted(named)} after States.ALL"
    assert routed, "the ASL routes no business error by name"


@pytest.fixture(scope="module")
def step_functions_schema() -> dict[str, Any]:
    """cfn-lint's own E3601 schema: the Definition of AWS::StepFunctions::StateMachine."""
    from cfnlint.data.schemas.other import step_functions

    text = resources.files(step_functions).joinpath("statemachine.json").read_text("utf-8")
    return dict(json.loads(text))


def _required_xor(validator: Any, names: list[str], instance: Any, _: Any) -> Any:
    """cfn-lint's one custom keyword: exactly one of these (Next or End) is present."""
    if validator.is_type(instance, "object") and sum(n in instance for n in names) != 1:
        yield jsonschema.ValidationError(f"exactly one of {names} is required")


# cfn-lint reads `$ref` next to other keywords as 2019-09+ does; draft 7 would ignore the others.
StepFunctionsValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"requiredXor": _required_xor}
)


def test_the_asl_file_passes_the_step_functions_schema_cfn_lint_ships(
    step_functions_schema, substitutions
):
    """STA-01: E3601 applied to the file cfn-lint never opens (DefinitionUri), with each
    placeholder filled in as CloudFormation would; moto would run an invalid definition."""
    text = ASL_PATH.read_text(encoding="utf-8")
    # whole-string placeholders only; test_asl.py holds that there are no others
    filled = re.sub(r'"\$\{(\w+)\}"', lambda m: json.dumps(substitutions[m.group(1)]), text)
    validator = StepFunctionsValidator(step_functions_schema)

    problems = [
        f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(json.loads(filled))
    ]

    assert "${" not in filled
    assert problems == []


def test_the_whole_run_has_a_deadline_longer_than_its_longest_path_and_shorter_than_a_year(
    asl,
):
    """REL-08: the execution's TimeoutSeconds outlasts the longest legitimate run (the longest
    approval round, the longest escalation round, a week's window wait and every target installed
    one at a time up to its deadline), so no run the design allows is cut short; and it is bounded
    well below Step Functions' one-year maximum, so a stuck run ends and is reported."""
    parameters = read_template(ROOT / "template.yaml")["Parameters"]
    approval_hours = max(
        int(parameters["ApprovalTimeoutHours"]["MaxValue"]),
        _field_bound(profiles.Profile, "approval_timeout_hours", Le),
    )
    escalation_hours = int(parameters["EscalationTimeoutHours"]["MaxValue"])
    states = dict(all_states(asl["States"]))
    install_deadline = states["Send Install Command"]["TimeoutSeconds"]
    slowest_concurrency = _field_bound(profiles.Profile, "max_concurrency", Ge)  # 1 at a time
    distribution = -(-profiles.MAX_TARGETS // slowest_concurrency) * install_deadline
    window_wait = _longest_window_wait()
    longest_path = (
        timedelta(hours=approval_hours + escalation_hours)
        + window_wait
        + timedelta(seconds=distribution)
    )

    timeout = asl.get("TimeoutSeconds")

    assert isinstance(timeout, int), timeout
    assert window_wait <= timedelta(days=7), window_wait
    assert isinstance(install_deadline, int)
    assert install_deadline > 0
    assert timeout >= longest_path.total_seconds(), (timeout, longest_path)
    assert timeout < timedelta(days=365).total_seconds(), timeout
