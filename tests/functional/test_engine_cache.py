"""What the engine keeps on disk between processes: the translated template and the parsed ASL.

GIVEN a template with a state machine definition in its own file and a private cache directory,
WHEN it is translated (or its definition parsed) again, THEN the kept result is used while the
template, the definition and the versions are unchanged; an edit to either, or a corrupt entry,
makes the engine derive it afresh.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from samtranslator.translator.translator import Translator

from certrelay.local import moto_fixes
from certrelay.local.template import translate

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: machine.asl.json
      Policies: []
"""


def definition(state: str) -> str:
    return json.dumps({"StartAt": state, "States": {state: {"Type": "Succeed"}}})


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CERTRELAY_CACHE_DIR", str(folder))
    monkeypatch.delenv("CERTRELAY_CACHE", raising=False)
    return folder


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    (tmp_path / "stack" / "machine.asl.json").write_text(definition("Done"), encoding="utf-8")
    return tmp_path / "stack" / "template.yaml"


def start_at(path: Path) -> str:
    resources = translate(path, {}, "us-east-1").cloudformation["Resources"]
    separator, lines = resources["Machine"]["Properties"]["DefinitionString"]["Fn::Join"]
    return str(json.loads(separator.join(lines))["StartAt"])


def no_translator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the translator ran: the kept translation was not used")

    monkeypatch.setattr(Translator, "translate", refuse)


def test_a_kept_translation_is_used_while_nothing_changed(
    stack: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert start_at(stack) == "Done"

    no_translator(monkeypatch)

    assert start_at(stack) == "Done"


def test_an_edited_definition_file_is_translated_again(
    stack: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_at(stack)

    stack.with_name("machine.asl.json").write_text(definition("Edited"), encoding="utf-8")

    assert start_at(stack) == "Edited"


def test_an_edited_template_is_translated_again(stack: Path, cache_dir: Path) -> None:
    start_at(stack)
    stack.with_name("other.asl.json").write_text(definition("Other"), encoding="utf-8")

    stack.write_text(TEMPLATE.replace("machine.asl.json", "other.asl.json"), encoding="utf-8")

    assert start_at(stack) == "Other"


def test_a_corrupt_kept_translation_is_ignored(stack: Path, cache_dir: Path) -> None:
    start_at(stack)
    for entry in cache_dir.glob("template-*.pickle"):
        entry.write_bytes(b"not a pickle")

    assert start_at(stack) == "Done"


def parse_in_a_fresh_process_like_engine(text: str) -> object:
    """The parse the engine's interpreter gets, as a new process would (no in-memory copy)."""
    with moto_fixes.definitions_parsed_once():
        program, _ = AmazonStateLanguageParser.parse(text)
        again, _ = AmazonStateLanguageParser.parse(text)
    assert again is program  # one program per definition within a process
    return program


def test_a_parsed_definition_is_kept_and_an_edited_one_parsed_again(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = parse_in_a_fresh_process_like_engine(definition("Done"))
    assert len(list(cache_dir.glob("asl-*.pickle"))) == 1

    def refuse(text: str) -> None:
        raise AssertionError("parsed again: the kept program was not used")

    with monkeypatch.context() as patched:
        patched.setattr(AmazonStateLanguageParser, "parse", staticmethod(refuse))
        kept = parse_in_a_fresh_process_like_engine(definition("Done"))
    edited = parse_in_a_fresh_process_like_engine(definition("Edited"))

    assert type(kept) is type(first)
    assert kept is not first  # read from disk, not the same object
    assert edited is not kept
    assert len(list(cache_dir.glob("asl-*.pickle"))) == 2


def test_a_corrupt_parsed_definition_is_parsed_again(cache_dir: Path) -> None:
    parse_in_a_fresh_process_like_engine(definition("Done"))
    for entry in cache_dir.glob("asl-*.pickle"):
        entry.write_bytes(b"\x80\x05garbage")

    assert parse_in_a_fresh_process_like_engine(definition("Done")) is not None


def read_model(folder: Path) -> object:
    """`folder`'s model, read as a new engine process reads every one: a new loader with
    nothing cached (not even the test session's shared cache, tests/conftest.py)."""
    from botocore.loaders import Loader

    with moto_fixes.models_loaded_once():
        loader = Loader(extra_search_paths=[str(folder)])
        loader._cache = {}
        return loader.load_data("toy/2026-01-01/service-2")


def test_a_botocore_model_is_kept_and_an_edited_one_read_again(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.loaders import JSONFileLoader

    models = tmp_path / "models"
    model = models / "toy" / "2026-01-01" / "service-2.json"
    model.parent.mkdir(parents=True)
    model.write_text(json.dumps({"metadata": {"serviceId": "Toy"}, "b": 1, "a": 2}))
    first = read_model(models)
    assert len(list(cache_dir.glob("botocore-json-*.pickle"))) == 1

    def refuse(*args: object) -> None:
        raise AssertionError("parsed again: the kept model was not used")

    with monkeypatch.context() as patched:
        patched.setattr(JSONFileLoader, "_load_file", refuse)
        kept = read_model(models)
    model.write_text(json.dumps({"metadata": {"serviceId": "Toy"}, "b": 3}))
    edited = read_model(models)

    assert kept == first == {"metadata": {"serviceId": "Toy"}, "b": 1, "a": 2}
    assert list(kept) == ["metadata", "b", "a"]  # botocore's order, as json read it
    assert edited == {"metadata": {"serviceId": "Toy"}, "b": 3}


def test_loaders_with_other_search_paths_read_a_file_they_share_once_and_get_its_data(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.loaders import JSONFileLoader, Loader

    from certrelay.local import cache

    shared, other, elsewhere = tmp_path / "shared", tmp_path / "other", tmp_path / "elsewhere"
    model = shared / "toy" / "2026-01-01" / "service-2.json"
    model.parent.mkdir(parents=True)
    model.write_text(json.dumps({"metadata": {"serviceId": "Toy"}, "b": 1}))
    (other / "toy" / "2026-01-01").mkdir(parents=True)  # no model there: shared's is read
    twin = elsewhere / "toy" / "2026-01-01" / "service-2.json"
    twin.parent.mkdir(parents=True)
    twin.write_text(json.dumps({"metadata": {"serviceId": "Toy"}, "b": 2}))  # its own bytes
    reads: list[str] = []
    read_file = JSONFileLoader._load_file  # type: ignore[attr-defined]
    loads = []
    load_kept = cache.load
    monkeypatch.setattr(
        JSONFileLoader, "_load_file", lambda *a: reads.append(a[1]) or read_file(*a)
    )
    monkeypatch.setattr(cache, "load", lambda *a: loads.append(a) or load_kept(*a))

    with moto_fixes.models_loaded_once():
        answers = []
        for paths in ([shared], [other, shared], [elsewhere]):
            loader = Loader(extra_search_paths=[str(p) for p in paths])
            loader._cache = {}
            answers.append(loader.load_data("toy/2026-01-01/service-2"))

    assert answers[0] is answers[1]  # one read, one object, for both search paths
    assert answers[0] == {"metadata": {"serviceId": "Toy"}, "b": 1}
    assert answers[2] == {"metadata": {"serviceId": "Toy"}, "b": 2}
    assert reads == [str(model), str(twin)]
    assert len(loads) == 2  # the kept copy looked up once for each file too


def test_a_corrupt_kept_model_is_read_from_its_file(tmp_path: Path, cache_dir: Path) -> None:
    models = tmp_path / "models"
    model = models / "toy" / "2026-01-01" / "service-2.json"
    model.parent.mkdir(parents=True)
    model.write_text(json.dumps({"b": 1}))
    read_model(models)
    for entry in cache_dir.glob("botocore-json-*.pickle"):
        entry.write_bytes(b"\x80\x05garbage")

    assert read_model(models) == {"b": 1}


def test_one_walk_lists_the_services_botocore_lists_for_every_model_type(tmp_path: Path) -> None:
    import gzip

    from botocore.loaders import Loader

    models = tmp_path / "models"
    for path in (
        "alpha/2020-01-01/service-2.json",
        "alpha/2021-01-01/paginators-1.json",
        "beta/2020-01-01/service-2.json",
        "beta/2020-01-01/waiters-2.json.gz",  # compressed, as botocore ships its models
        "gamma/2020-01-01/service-2.json/not-a-model",  # a folder named like a model is not one
    ):
        (models / path).parent.mkdir(parents=True, exist_ok=True)
        (models / path).write_bytes(gzip.compress(b"{}") if path.endswith(".gz") else b"{}")
    (models / "README").write_text("not a service")
    (models / "delta").mkdir()
    ours = {"alpha", "beta", "gamma", "delta"}
    kinds = ("service-2", "paginators-1", "waiters-2", "endpoint-rule-set-1")

    def listings() -> dict[str, list[str]]:
        loader = Loader(extra_search_paths=[str(models)])
        loader._cache = {}  # as a new process's (tests/conftest.py shares loaders' caches)
        return {
            kind: [s for s in loader.list_available_services(kind) if s in ours] for kind in kinds
        }

    botocore_says = listings()
    with moto_fixes.models_loaded_once():
        walked = listings()

    assert walked == botocore_says
    assert walked["service-2"] == ["alpha", "beta"]
    assert walked["waiters-2"] == ["beta"]
