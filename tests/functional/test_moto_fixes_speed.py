"""The engine's speed fixes to moto (certrelay.local.moto_fixes_speed) change no answer:
the JSON copier copies as deepcopy does, an execution's history is the same with it and
without it, and moto's routers still match and build URLs with their builders compiled late."""

from __future__ import annotations

import copy
import json
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, ClassVar
from unittest import mock

import pytest
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.parser import JsonPathParser

from certrelay.local import moto_fixes, moto_fixes_speed
from certrelay.local.engine import LocalEngine
from certrelay.local.moto_fixes_speed import json_deepcopy

ROLE = "arn:aws:iam::123456789012:role/speed-tests"
DOCUMENT: dict[str, Any] = {
    "route": "distribute",
    "reasons": ["DistributionPending", "LikeForLike"],
    "count": 3,
    "ratio": 0.5,
    "ok": True,
    "none": None,
    "targets": [{"kind": "server", "instances": ["i-1", "i-2"], "port": 8443}, []],
    "nested": {"a": {"b": {"c": [1, 2.5, "x", False, None, {}]}}},
}


def test_given_a_json_document_when_copied_then_equal_to_deepcopy_and_independent_of_it() -> None:
    copied = json_deepcopy(DOCUMENT)

    assert copied == copy.deepcopy(DOCUMENT)
    assert json.dumps(copied) == json.dumps(DOCUMENT)  # same key order too
    copied["targets"][0]["instances"].append("i-3")
    copied["nested"]["a"]["b"]["c"][5]["new"] = 1
    assert DOCUMENT["targets"][0]["instances"] == ["i-1", "i-2"]
    assert DOCUMENT["nested"]["a"]["b"]["c"][5] == {}


def test_given_a_part_shared_twice_when_copied_then_each_place_gets_its_own_copy() -> None:
    shared = {"k": [1]}
    copied = json_deepcopy({"x": shared, "y": shared})

    copied["x"]["k"].append(2)

    assert copied["y"] == {"k": [1]}  # as two places in a JSON text would be
    assert shared == {"k": [1]}


@pytest.mark.parametrize(
    "value",
    [
        {"when": (1, 2)},  # a tuple
        {1: "not a string key"},
        [{"object": object()}],
        {"set": {1, 2}},
    ],
)
def test_given_anything_but_json_when_copied_then_copy_deepcopy_copies_it_whole(value: Any) -> None:
    with mock.patch.object(copy, "deepcopy", wraps=copy.deepcopy) as deepcopy:
        copied = json_deepcopy(value)

    deepcopy.assert_called_once_with(value)
    assert type(copied) is type(value)


def test_given_a_memo_when_copied_then_copy_deepcopy_keeps_its_sharing() -> None:
    shared = {"k": [1]}
    memo: dict[int, Any] = {}

    first = json_deepcopy(shared, memo)

    assert json_deepcopy(shared, memo) is first


def test_given_the_fix_when_entered_then_the_interpreters_modules_copy_json_till_it_ends() -> None:
    from moto.stepfunctions.parser.asl.eval import states

    with moto_fixes_speed.interpreter_copies_json_directly():
        assert states.copy.deepcopy is json_deepcopy
        assert states.copy.copy is copy.copy
    assert states.copy is copy


def test_given_rules_compiled_late_when_a_url_is_built_then_werkzeug_builds_the_same() -> None:
    from moto.core.routing import SmithyRule
    from werkzeug.routing import Map

    def build(path: str) -> str:
        rules = [SmithyRule(path, operations=[], methods=["GET"], endpoint="op")]
        return Map(rules).bind("example.com").build("op", {"Name": "a b", "Id": 7})

    eager = build("/functions/<Name>/versions/<Id>")
    with moto_fixes_speed.routers_compile_url_builders_when_used():
        late = build("/functions/<Name>/versions/<Id>")

    assert late == eager == "/functions/a%20b/versions/7"


# -- the same histories --------------------------------------------------------------------------
MACHINE: dict[str, Any] = {
    "StartAt": "Shape",
    "States": {
        "Shape": {
            "Type": "Pass",
            "Parameters": {"items.$": "$.items", "meta": {"source.$": "$.source", "fixed": [1, 2]}},
            "ResultPath": "$.shaped",
            "Next": "Each",
        },
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.shaped.items",
            "ItemSelector": {"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Mark",
                "States": {
                    "Mark": {
                        "Type": "Pass",
                        "Parameters": {
                            "merged.$": "States.JsonMerge($.item, "
                            "States.StringToJson('{\"seen\":true}'), false)",
                            "index.$": "$.index",
                        },
                        "End": True,
                    }
                },
            },
            "ResultPath": "$.marked",
            "Next": "Both",
        },
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": True}}},
                {
                    "StartAt": "Right",
                    "States": {
                        "Right": {"Type": "Pass", "Result": {"r": [None, 1.5]}, "End": True}
                    },
                },
            ],
            "OutputPath": "$[1]",
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}
INPUT = {"source": "test", "items": [{"n": 1, "tags": ["a"]}, {"n": 2, "tags": []}]}


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine() as local:
        yield local


def _history(engine: LocalEngine) -> list[dict[str, Any]]:
    sfn = engine._sfn
    machine = sfn.create_state_machine(
        name=f"speed-{uuid.uuid4().hex[:8]}", definition=json.dumps(MACHINE), roleArn=ROLE
    )["stateMachineArn"]
    started = sfn.start_execution(
        stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(INPUT)
    )["executionArn"]
    engine.wait(started, name="speed", seconds=30)
    events = sfn.get_execution_history(executionArn=started, maxResults=1000)["events"]
    # Map iterations and Parallel branches run on threads: their events interleave by timing,
    # so the events are compared as a sorted list, each with its details, without ids and times.
    unordered = ("timestamp", "id", "previousEventId")
    return sorted(
        ({k: v for k, v in e.items() if k not in unordered} for e in events),
        key=lambda e: json.dumps(e, sort_keys=True),
    )


@pytest.mark.parametrize(
    "event",
    [
        "before-call.autoscaling.DescribeTags",  # renamed: auto-scaling
        "before-call.apigateway.GetRestApi",  # renamed: api-gateway
        "before-call.dynamodb.GetItem",  # kept
        "creating-client-class.sns",
    ],
)
def test_given_clients_sharing_aliases_when_an_event_is_named_then_as_botocore_names_it(
    event: str,
) -> None:
    import boto3
    from botocore.hooks import EventAliaser, HierarchicalEmitter

    session = boto3.session.Session(region_name="us-east-1")._session
    expected = EventAliaser(HierarchicalEmitter())._alias_event_name(event)

    with moto_fixes_speed.clients_share_event_aliases():
        first = copy.copy(session.get_component("event_emitter"))
        second = copy.copy(session.get_component("event_emitter"))
        assert first._alias_event_name(event) == expected
        assert second._alias_name_cache is first._alias_name_cache  # answered once
        assert second._alias_event_name(event) == expected


def test_given_two_sessions_when_an_event_is_named_in_one_then_the_other_has_the_answer() -> None:
    import botocore.session
    from botocore.hooks import EventAliaser, HierarchicalEmitter

    name = "before-call.autoscaling.DescribeTags"
    expected = EventAliaser(HierarchicalEmitter())._alias_event_name(name)

    with moto_fixes_speed.clients_share_event_aliases():
        first = botocore.session.Session().get_component("event_emitter")
        second = botocore.session.Session().get_component("event_emitter")
        own = EventAliaser(HierarchicalEmitter(), {"autoscaling": "other"})
        assert first._alias_event_name(name) == expected == "before-call.auto-scaling.DescribeTags"
        assert second._alias_name_cache[name] == expected  # answered once for both
        assert own._alias_event_name(name) == "before-call.other.DescribeTags"  # its own table
    assert EventAliaser(HierarchicalEmitter())._alias_name_cache == {}  # as before, after


def test_given_a_copy_with_its_own_alias_table_when_copied_then_it_keeps_its_own_cache() -> None:
    from botocore.hooks import EventAliaser, HierarchicalEmitter

    original = EventAliaser(HierarchicalEmitter(), {"old": "new"})
    original._alias_event_name("before-call.old.Op")

    with (
        moto_fixes_speed.clients_share_event_aliases(),
        mock.patch.object(
            copy,
            "copy",
            side_effect=lambda value: {"other": "x"} if isinstance(value, dict) else value,
        ),
    ):
        twin = EventAliaser.__copy__(original)

    assert twin._alias_name_cache is not original._alias_name_cache
    assert twin._alias_event_name("before-call.old.Op") == "before-call.old.Op"


@pytest.mark.parametrize("service", ["s3", "dynamodb", "sns"])
def test_given_clients_sharing_rule_sets_when_endpoints_resolve_then_as_botocore_resolves_them(
    service: str,
) -> None:
    import boto3
    from botocore.config import Config

    from certrelay.local import moto_fixes

    def endpoints(region: str, *, fips: bool = False) -> tuple[str, Any]:
        client = boto3.session.Session(region_name=region).client(
            service,
            config=Config(use_fips_endpoint=fips),
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        resolver = client._ruleset_resolver
        url = resolver.construct_endpoint(
            client.meta.service_model.operation_model(client.meta.service_model.operation_names[0]),
            call_args={},
            request_context={},
        ).url
        return url, resolver._provider

    cases = [("us-east-1", False), ("eu-west-1", False), ("us-east-1", True)]
    with moto_fixes.models_loaded_once():
        alone = [endpoints(region, fips=fips)[0] for region, fips in cases]
        with moto_fixes_speed.clients_share_endpoint_rulesets():
            shared = [endpoints(region, fips=fips) for region, fips in cases]

    assert [url for url, _ in shared] == alone  # each region's and FIPS' own endpoint
    assert "eu-west-1" in alone[1]
    assert "fips" in alone[2]
    assert shared[0][1] is shared[1][1] is shared[2][1]  # one provider for the three clients


def test_given_an_execution_when_run_with_the_json_copier_and_without_then_histories_match(
    engine: LocalEngine,
) -> None:
    with_fix = _history(engine)
    with ExitStack() as stack:  # moto's own copy.deepcopy back, for this execution only
        for module in list(sys.modules.values()):
            if isinstance(getattr(module, "copy", None), moto_fixes_speed._CopyModule):
                stack.enter_context(mock.patch.object(module, "copy", copy))
        without_fix = _history(engine)

    assert len(with_fix) > 20
    assert "ExecutionSucceeded" in [e["type"] for e in with_fix]
    assert with_fix == without_fix


class _Base:
    def inherited(self) -> None: ...

    @staticmethod
    def static() -> None: ...  # a function too, as getmembers sees it on the class


class _Responses(_Base):
    constant = "not a function"

    def own(self) -> None: ...

    @classmethod
    def bound(cls) -> None: ...  # a method, not a function: getmembers does not list it

    @property
    def prop(self) -> int:
        return 1


@pytest.mark.parametrize(
    "cls",
    [
        _Responses,
        "moto.acm.responses:AWSCertificateManagerResponse",
        "moto.s3.responses:S3Response",
    ],
)
def test_given_a_class_when_asked_about_each_name_then_the_same_names_as_getmembers_lists(
    cls: Any,
) -> None:
    import importlib
    import inspect

    if isinstance(cls, str):
        module, _, name = cls.partition(":")
        cls = getattr(importlib.import_module(module), name)
    listed = {name for name, _ in inspect.getmembers(cls, inspect.isfunction)}
    asked = set(dir(cls)) | {"missing", "", "__class__"}

    functions = moto_fixes_speed.ClassFunctions(cls)

    assert {name for name in asked if name in functions} == listed
    assert 42 not in functions


def test_given_a_method_patched_in_and_out_when_asked_then_each_answer_is_the_current_one() -> None:
    functions = moto_fixes_speed.ClassFunctions(_Responses)

    assert "own" in functions
    with mock.patch.object(_Responses, "own", "a string now"):
        assert "own" not in functions
    with mock.patch.object(_Responses, "added", _Base.inherited, create=True):
        assert "added" in functions
    assert "added" not in functions
    assert "own" in functions


def test_given_the_fix_when_moto_answers_then_actions_are_found_and_unknown_ones_refused() -> None:
    import boto3
    from moto import mock_aws
    from moto.acm.responses import AWSCertificateManagerResponse

    with mock_aws(), moto_fixes_speed.actions_found_by_name():
        acm = boto3.client("acm", region_name="us-east-1")
        requested = acm.request_certificate(DomainName="speed.example.com")["CertificateArn"]
        described = acm.describe_certificate(CertificateArn=requested)["Certificate"]
        with (
            mock.patch.object(AWSCertificateManagerResponse, "list_certificates", "not a method"),
            pytest.raises(NotImplementedError, match="list_certificates"),
        ):
            acm.list_certificates()
        listed = acm.list_certificates()["CertificateSummaryList"]

    assert described["DomainName"] == "speed.example.com"
    assert [c["CertificateArn"] for c in listed] == [requested]


class _Meta:
    serialization_aliases: ClassVar[dict[str, str]] = {"Name": "label"}


class _WithMeta:
    Meta = _Meta
    label = "from Meta"
    name = "snake"


class _Plain:
    name = "snake"
    Name = "pascal"


def _keys_for_every_member(picker: Any) -> list[tuple[str, str, list[str]]]:
    """What `picker` tries for each member of a few of moto's own output shapes."""
    from moto.core.serialize import AttributePickerContext
    from moto.core.utils import get_service_model

    found = []
    for service, operation in [
        ("acm", "DescribeCertificate"),
        ("dynamodb", "DescribeTable"),
        ("securityhub", "GetFindings"),
        ("stepfunctions", "DescribeExecution"),
    ]:
        model = get_service_model(service).operation_model(operation)
        pending = [model.output_shape]
        seen = set()
        while pending:
            shape = pending.pop()
            if shape.name in seen or shape.type_name != "structure":
                continue
            seen.add(shape.name)
            for key, member in shape.members.items():
                member.parent = shape  # as moto's serializer sets it
                for obj in (_WithMeta(), _Plain(), {}):
                    context = AttributePickerContext(obj=obj, key=key, shape=member)
                    keys = list(picker.get_possible_keys(context))
                    found.append((shape.name, type(obj).__name__, keys))
                    found.append((shape.name, "again", list(picker.get_possible_keys(context))))
                pending.append(getattr(member, "member", member))
    found.append(
        (
            "meta",
            "Name",
            list(
                picker.get_possible_keys(
                    AttributePickerContext(obj=_WithMeta(), key="Name", shape=model.output_shape)
                )
            ),
        )
    )
    return found


@pytest.mark.parametrize("picker_class", ["AttributePicker", "XFormedAttributePicker"])
def test_given_remembered_aliases_when_members_are_picked_then_the_same_names_in_the_same_order(
    picker_class: str,
) -> None:
    from moto.core import serialize

    picker = getattr(serialize, picker_class)()
    without_fix = _keys_for_every_member(picker)
    with moto_fixes_speed.serializers_remember_member_aliases():
        with_fix = _keys_for_every_member(picker)
        with mock.patch.object(serialize.NoAlias, "has_alias", side_effect=AssertionError):
            remembered = _keys_for_every_member(picker)  # no provider asked again
        own = serialize.XFormedAttributePicker(alias_providers=[serialize.NoAlias])
        own_keys = list(own.get_possible_keys(serialize.AttributePickerContext({}, "Key", None)))  # type: ignore[arg-type]

    assert len(with_fix) > 200
    assert with_fix == without_fix == remembered
    meta = [keys for where, _, keys in with_fix if where == "meta"]
    assert meta[0][0] == "label"  # the object's own Meta: asked first, every time
    assert own_keys == ["Key", "key"]  # other providers: moto's own code


def test_given_remembered_aliases_when_moto_answers_then_responses_are_the_same() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        acm = boto3.client("acm", region_name="us-east-1")
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        arn = acm.request_certificate(DomainName="alias.example.com")["CertificateArn"]
        ddb.create_table(
            TableName="speed",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        def answers() -> list[Any]:
            return [
                acm.describe_certificate(CertificateArn=arn)["Certificate"],
                acm.list_tags_for_certificate(CertificateArn=arn).get("Tags"),
                ddb.describe_table(TableName="speed")["Table"],
            ]

        without_fix = answers()
        with moto_fixes_speed.serializers_remember_member_aliases():
            with_fix = answers()
            again = answers()

    assert with_fix == without_fix == again
    assert with_fix[0]["DomainName"] == "alias.example.com"
    assert with_fix[2]["TableName"] == "speed"


# -- JSONPath parsers reused (moto_fixes._parse_with) ----------------------------------------
def test_given_parses_on_many_threads_when_one_runs_at_a_time_then_one_parser_serves_them() -> None:
    made: list[Any] = []

    class Counting(JsonPathParser):
        def __init__(self) -> None:
            made.append(self)
            super().__init__()

    parse = moto_fixes._parse_with(Counting)
    paths = ["$.a.b", "$.targets[0].kind", "$.nested.a"]
    results: list[Any] = []
    for path in paths:  # one thread per parse, one after the other, as moto's executions run
        worker = threading.Thread(target=lambda p=path: results.append(parse(p)))
        worker.start()
        worker.join()

    assert [str(r) for r in results] == [str(JsonPathParser().parse(p)) for p in paths]
    assert len(made) == 1


def test_given_parses_at_once_when_parsed_then_each_has_its_own_parser_and_its_answer() -> None:
    made: list[Any] = []
    inside = threading.Barrier(2)

    class Waiting(JsonPathParser):
        def __init__(self) -> None:
            made.append(self)
            super().__init__()

        def parse(self, string: str, lexer: Any = None) -> Any:
            inside.wait(timeout=10)  # both parses are inside a parser at the same time
            return super().parse(string, lexer)

    parse = moto_fixes._parse_with(Waiting)
    results: dict[str, Any] = {}
    workers = [
        threading.Thread(target=lambda p=path: results.__setitem__(p, parse(p)))
        for path in ("$.a", "$.b.c")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)

    assert len(made) == 2
    assert {p: str(r) for p, r in results.items()} == {"$.a": "$.a", "$.b.c": "$.b.c"}


def test_given_a_path_that_does_not_parse_when_parsed_then_the_error_and_the_next_parses() -> None:
    parse = moto_fixes._parse_with(JsonPathParser)

    with pytest.raises(JsonPathParserError):
        parse("$.[[")

    assert str(parse("$.a.b")) == "$.a.b"


def _backends() -> list[Any]:
    from moto.backends import get_backend

    found = []
    for service in ("acm", "dynamodb", "lambda", "s3", "sqs", "stepfunctions", "securityhub"):
        backends = get_backend(service)  # type: ignore[call-overload]
        regions = backends["123456789012"]
        found.append(regions["us-east-1"] if "us-east-1" in regions else regions["aws"])
    return found


def test_given_remembered_urls_when_asked_then_each_backend_has_the_urls_moto_works_out() -> None:
    backends = _backends()
    worked_out = [backend.urls for backend in backends]

    with moto_fixes_speed.backends_remember_their_urls():
        first = [backend.urls for backend in backends]
        first[0].clear()  # a caller's copy: the next caller still gets the whole table
        again = [backend.urls for backend in backends]

    assert again == worked_out
    assert all(urls for urls in worked_out)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MOTO_S3_CUSTOM_ENDPOINTS", "https://s3.local.example:9000", "s3.local.example"),
        ("MOTO_ENABLE_ISO_REGIONS", "true", "c2s.ic.gov"),
    ],
)
def test_given_remembered_urls_when_a_setting_changes_then_the_urls_follow_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    (s3,) = [backend for backend in _backends() if type(backend).__name__ == "S3Backend"]

    with moto_fixes_speed.backends_remember_their_urls():
        before = s3.urls
        monkeypatch.setenv(variable, value)
        after = s3.urls
    worked_out = s3.urls  # moto's own property, with the setting
    monkeypatch.delenv(variable)
    with moto_fixes_speed.backends_remember_their_urls():
        back = s3.urls

    assert not any(expected in url for url in before)
    assert any(expected in url for url in after)
    assert after == worked_out
    assert back == before
