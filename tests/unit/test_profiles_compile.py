"""Profiles compiled to JSON at build: the functions read them without PyYAML, and only while the
JSON was compiled from the very bytes of the YAML beside it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from certrelay.errors import ProfileError
from certrelay.profiles import load_profiles, load_profiles_file
from certrelay.profiles_compile import compiled_json, main

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = ROOT / "config" / "profiles.yaml"


@pytest.fixture
def profiles_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.yaml"
    path.write_bytes(DEPLOYED.read_bytes())
    return path


def test_given_the_deployed_yaml_then_the_committed_json_is_compiled_from_it():
    """GIVEN config/profiles.yaml WHEN compiled THEN config/profiles.json is exactly that (the
    layer ships both; rerun `python -m certrelay.profiles_compile --write-json` after an edit)."""
    assert (ROOT / "config" / "profiles.json").read_text(encoding="utf-8") == compiled_json(
        DEPLOYED
    )


def test_given_a_current_json_when_loaded_then_the_same_profiles_as_the_yaml(profiles_yaml: Path):
    assert main(["--write-json", str(profiles_yaml)]) == 0
    from_json = load_profiles_file(profiles_yaml)
    assert from_json == load_profiles(profiles_yaml.read_text(encoding="utf-8"))
    assert set(from_json) == {"web"}


def test_given_a_current_json_when_a_fresh_interpreter_loads_then_pyyaml_is_not_imported(
    profiles_yaml: Path,
):
    assert main(["--write-json", str(profiles_yaml)]) == 0
    code = (
        "import sys\n"
        "from certrelay.profiles import load_profiles_file\n"
        "print(sorted(load_profiles_file(sys.argv[1])), 'yaml' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(profiles_yaml)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src")},
    )
    assert done.stdout.split() == ["['web']", "False"]


def test_given_the_yaml_edited_after_compiling_when_loaded_then_the_edit_is_served(
    profiles_yaml: Path,
):
    assert main(["--write-json", str(profiles_yaml)]) == 0
    edited = profiles_yaml.read_text(encoding="utf-8").replace("approval: human", "approval: auto")
    assert edited != profiles_yaml.read_text(encoding="utf-8")
    profiles_yaml.write_text(edited, encoding="utf-8")
    assert load_profiles_file(profiles_yaml)["web"].approval == "auto"
    assert main(["--check", str(profiles_yaml)]) == 1


@pytest.mark.parametrize("damage", ["{not json", '{"sha256": "00"}', "[]", ""])
def test_given_a_damaged_json_when_loaded_then_the_yaml_is_parsed(profiles_yaml: Path, damage: str):
    (profiles_yaml.parent / "profiles.json").write_text(damage, encoding="utf-8")
    assert load_profiles_file(profiles_yaml) == load_profiles(
        profiles_yaml.read_text(encoding="utf-8")
    )


def test_given_a_current_hash_over_a_bad_document_when_loaded_then_refused_as_the_yaml_would_be(
    profiles_yaml: Path,
):
    """The JSON path validates the document with the same models: a hand-edited JSON that kept
    the hash still cannot carry an invalid profile."""
    assert main(["--write-json", str(profiles_yaml)]) == 0
    compiled_file = profiles_yaml.parent / "profiles.json"
    compiled = json.loads(compiled_file.read_text(encoding="utf-8"))
    compiled["document"]["profiles"]["web"]["approval"] = "sometimes"
    compiled_file.write_text(json.dumps(compiled), encoding="utf-8")
    with pytest.raises(ProfileError, match=f"^{profiles_yaml}: profile 'web'"):
        load_profiles_file(profiles_yaml)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profiles:\n  web: {}\n  web: {}\n", "not valid YAML (line 3, column 3)"),
        ("profiles:\n  web: {approval: sometimes}\n", "profile 'web'"),
    ],
)
def test_given_a_bad_yaml_when_compiled_then_refused_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
):
    path = tmp_path / "profiles.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["--write-json", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "profiles.json").exists()


def test_given_a_value_json_cannot_carry_when_compiled_then_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """GIVEN a document with a YAML date and an integer key (the models refuse both today; this
    guard keeps the JSON exact should a field ever accept them) WHEN compiled THEN refused."""
    monkeypatch.setattr("certrelay.profiles_compile.load_profiles", lambda text, source: {})
    path = tmp_path / "profiles.yaml"
    path.write_text("profiles:\n  web: {note: 2026-12-01, 1: one}\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="JSON cannot carry"):
        compiled_json(path)


def test_given_wrong_arguments_then_usage_and_exit_2(capsys: pytest.CaptureFixture[str]):
    assert main(["--write", "x"]) == 2
    assert capsys.readouterr().err.startswith("usage: python -m certrelay.profiles_compile")
