"""Compiled profiles are taken without validating again only when the build's validation, by
these exact models, produced them (certrelay.profiles.trusted_profiles); otherwise validated.

GIVEN profiles YAML compiled by `certrelay.profiles_compile`, WHEN a function loads it THEN the
Profile objects equal, field by field and with the same fields set, what validating the YAML
gives; and a compiled file that another model, another library release or a hand edit touched
is validated (or refused), never taken as it is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from certrelay import profiles
from certrelay.errors import ProfileError
from certrelay.profiles import (
    MODELS,
    S3Target,
    ServerTarget,
    load_profiles,
    load_profiles_file,
    model_libraries,
    validated_digest,
)
from certrelay.profiles_compile import main, models_fingerprint

ROOT = Path(__file__).resolve().parents[2]

# Every shape a profile takes: both target kinds (discriminated by `kind`), a nested window with
# and without its default time zone, selectors by ids and by tags, script adapters with their
# allowed directories (a trailing slash the validator strips), the older approval spelling the
# validator rewrites, addresses it normalises, defaults left unset, explicit nulls.
SHAPES = {
    "repo": (ROOT / "config" / "profiles.yaml").read_text(encoding="utf-8"),
    "demo fleet": "profiles:\n"
    + (ROOT / "src/certrelay/local/fleet/demo_fleet.yaml")
    .read_text(encoding="utf-8")
    .split("\nprofiles:\n", 1)[1]
    .split("\n\n", 1)[0]
    + "\n",
    "every field": """
profiles:
  web:
    owners: [Web-Team@EXAMPLE.com, ops@example.com]
    approvers: [web-lead@example.com]
    approval: required
    approval_timeout_hours: 24
    escalation: [oncall@example.com]
    notify: digest
    window: {days: [sat, sun], start: "22:00", end: "05:00", timezone: Europe/Berlin}
    max_concurrency: 10
    exports_per_day: 3
    script_dirs: [/opt/hooks/]
    targets:
      - {kind: s3, bucket: partner-mtls-bundles, prefix: web/, kms_key: alias/partner}
      - {kind: s3, name: vault, bucket: key-vault, include_key: true}
      - kind: server
        name: edge
        tags: {role: edge, env: prod}
        cert_path: /etc/ssl/web/cert.pem
        key_path: /etc/ssl/web/key.pem
        chain_path: /etc/ssl/web/chain.pem
        reload: script:/opt/hooks/reload.sh
        config_test: script:/opt/hooks/test.sh
        verify_port: 8443
        verify_server_name: www.example.com
      - kind: server
        instances: [i-0a1b2c3d4e5f60001, mi-0123456789abcdef0]
        cert_path: /etc/ssl/web/cert.pem
        key_path: /etc/ssl/web/key.pem
        chain_path: /etc/ssl/web/chain.pem
        reload: systemd:nginx.service
  api:
    approval: auto
    window: {days: [mon], start: "01:00", end: "02:00"}
    targets: [{kind: s3, bucket: api-bundles}]
  owners-only:
    owners: [a@example.com]
    window: null
    max_concurrency: null
""",
    "no profiles": "profiles:\n",
    "empty": "",
}


@pytest.fixture(params=sorted(SHAPES), ids=lambda name: name.replace(" ", "-"))
def compiled(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "profiles.yaml"
    path.write_text(SHAPES[request.param], encoding="utf-8")
    assert main(["--write-json", str(path)]) == 0
    return path


def _same(mine: object, theirs: object, where: str, *, ordered: bool = True) -> None:
    """Equal values, the same classes, and for models the same fields set, all the way down
    (and mappings in the same order, when `ordered`)."""
    assert type(mine) is type(theirs), where
    if isinstance(mine, BaseModel):
        assert isinstance(theirs, BaseModel)
        assert mine.model_fields_set == theirs.model_fields_set, where
        assert mine.__pydantic_extra__ == theirs.__pydantic_extra__, where
        for field in type(mine).model_fields:
            _same(getattr(mine, field), getattr(theirs, field), f"{where}.{field}", ordered=ordered)
    elif isinstance(mine, list | tuple):
        assert isinstance(theirs, list | tuple)
        assert len(mine) == len(theirs), where
        for index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            _same(a, b, f"{where}[{index}]", ordered=ordered)
    elif isinstance(mine, dict):
        assert isinstance(theirs, dict)
        assert list(mine) == list(theirs) if ordered else set(mine) == set(theirs), where
        for key in mine:
            _same(mine[key], theirs[key], f"{where}[{key!r}]", ordered=ordered)
    else:
        assert mine == theirs, where
    assert mine == theirs, where


def _never_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: object, *, source: str) -> dict[str, Any]:
        raise AssertionError(f"{source} was validated again")

    monkeypatch.setattr(profiles, "_validated", refuse)


def _validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the source of each document validated here (the trusted path validates none)."""
    sources: list[str] = []
    real = profiles._validated

    def validated(data: object, *, source: str) -> dict[str, Any]:
        sources.append(source)
        return real(data, source=source)

    monkeypatch.setattr(profiles, "_validated", validated)
    return sources


def _edit(path: Path, change: Any) -> None:
    compiled_file = path.with_suffix(".json")
    data = json.loads(compiled_file.read_text(encoding="utf-8"))
    change(data)
    compiled_file.write_text(json.dumps(data), encoding="utf-8")


def _redigest(data: dict[str, Any]) -> None:
    """What only a deliberate forger does: the digest made again over an edited file."""
    validated = data["validated"]
    models = [validated["models"], validated["libraries"]]
    validated["sha256"] = validated_digest(
        data["sha256"], data["document"], models, validated["profiles"]
    )


def test_the_models_fingerprint_in_the_code_is_the_models_own():
    """GIVEN certrelay.profiles and certrelay.approval_policy as they are WHEN fingerprinted
    THEN MODELS is that fingerprint: an edit of the models (or of anything in the module) fails
    here until MODELS and config/profiles.json are written again:
    `python -m certrelay.profiles_compile --write-json config/profiles.yaml` after setting MODELS
    to the fingerprint printed below."""
    assert models_fingerprint() == MODELS, (
        f"set certrelay.profiles.MODELS = {models_fingerprint()!r}"
    )


def test_given_models_edited_without_setting_models_when_compiled_then_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """GIVEN MODELS naming other models than the ones in the code (an edit of the models that
    did not set MODELS again) WHEN the build compiles THEN it refuses, naming the fingerprint:
    a file compiled before the edit would otherwise still be taken as validated."""
    monkeypatch.setattr(profiles, "MODELS", "sha256:" + "1" * 64)
    path = tmp_path / "profiles.yaml"
    path.write_text(SHAPES["repo"], encoding="utf-8")
    assert main(["--write-json", str(path)]) == 2
    assert f"set it to {models_fingerprint()!r}" in capsys.readouterr().err
    assert not path.with_suffix(".json").exists()


def test_given_the_committed_json_then_it_is_trusted_under_these_models_and_releases():
    data = json.loads((ROOT / "config" / "profiles.json").read_text(encoding="utf-8"))
    assert data["validated"]["models"] == MODELS
    assert data["validated"]["libraries"] == model_libraries()
    assert profiles.trusted_profiles(data) is not None


def test_the_layer_and_the_project_pin_the_releases_the_compiled_profiles_record():
    # GIVEN the releases config/profiles.json was validated with THEN the Lambda layer installs
    # those (under others the functions validate again at init) and so does the project
    recorded = json.loads((ROOT / "config" / "profiles.json").read_text(encoding="utf-8"))
    layer = (ROOT / "src" / "requirements.txt").read_text(encoding="utf-8").split()
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for library in ("pydantic", "email-validator"):
        release = recorded["validated"]["libraries"][library]
        assert f"{library}=={release}" in layer
        assert f'"{library}=={release}"' in project


def test_given_a_compiled_file_when_loaded_then_the_profiles_equal_the_validated_ones(
    compiled: Path, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN the validated profiles of the YAML, and of the compiled document (the same profiles,
    # in the compiled file's order: its keys are sorted)
    expected = load_profiles(compiled.read_text(encoding="utf-8"))
    document = json.loads(compiled.with_suffix(".json").read_text(encoding="utf-8"))["document"]
    validated_document = profiles._validated(document, source="compiled")
    # WHEN the compiled file is loaded, with validation refused
    _never_validated(monkeypatch)
    loaded = load_profiles_file(compiled)
    # THEN the same objects: classes (the target union's branches), values, fields set
    _same(loaded, validated_document, "profiles")
    assert loaded == expected
    for name, profile in loaded.items():
        _same(profile, expected[name], name, ordered=False)  # the YAML's mappings' order
        assert profile.model_dump() == expected[name].model_dump()
        assert profile.target_ids(name) == expected[name].target_ids(name)


def test_every_target_kind_and_a_window_are_in_the_shapes_checked():
    every = load_profiles(SHAPES["every field"])
    kinds = {type(t) for p in every.values() for t in p.targets}
    assert kinds == {S3Target, ServerTarget}
    assert every["web"].approval == "human"  # rewritten by the validator from "required"
    assert every["web"].owners[0] == "Web-Team@example.com"  # normalised by it
    assert every["web"].script_dirs == ["/opt/hooks"]  # stripped by it
    assert "timezone" not in every["api"].window.model_fields_set  # type: ignore[union-attr]


def test_given_the_validated_profiles_edited_by_hand_then_the_document_is_validated_instead(
    compiled: Path, monkeypatch: pytest.MonkeyPatch
):
    """GIVEN the repo's compiled file whose validated server target was changed to reload a
    script outside its profile's script_dirs (the validator refuses that) WHEN loaded THEN the
    digest does not hold: the document is validated, and the YAML's own target is served."""
    if not load_profiles(compiled.read_text(encoding="utf-8")):
        return  # nothing to tamper with in an empty file; the other shapes cover it

    def tamper(data: dict[str, Any]) -> None:
        for profile in data["validated"]["profiles"].values():
            profile["targets"] = [
                {
                    "kind": "server",
                    "instances": ["i-0a1b2c3d4e5f60009"],
                    "cert_path": "/etc/c.pem",
                    "key_path": "/etc/k.pem",
                    "chain_path": "/etc/ch.pem",
                    "reload": "script:/tmp/evil.sh",
                }
            ]

    _edit(compiled, tamper)
    validated = _validations(monkeypatch)
    loaded = load_profiles_file(compiled)
    assert validated == [str(compiled)]
    assert loaded == load_profiles(compiled.read_text(encoding="utf-8"))
    assert all(
        getattr(t, "reload", "") != "script:/tmp/evil.sh"
        for p in loaded.values()
        for t in p.targets
    )


def test_given_both_sections_edited_into_a_bad_profile_then_refused(tmp_path: Path):
    path = tmp_path / "profiles.yaml"
    path.write_text(SHAPES["repo"], encoding="utf-8")
    assert main(["--write-json", str(path)]) == 0

    def tamper(data: dict[str, Any]) -> None:
        data["document"]["profiles"]["web"]["approval"] = "sometimes"
        data["validated"]["profiles"]["web"]["approval"] = "sometimes"

    _edit(path, tamper)
    with pytest.raises(ProfileError, match=f"^{re.escape(str(path))}: profile 'web'"):
        load_profiles_file(path)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda v: v.update(models="sha256:" + "0" * 64), id="other-models"),
        pytest.param(lambda v: v["libraries"].update(pydantic="2.0.0"), id="other-pydantic"),
        pytest.param(
            lambda v: v["libraries"].update({"email-validator": "1.0.0"}),
            id="other-email-validator",
        ),
        pytest.param(lambda v: v.pop("models"), id="no-fingerprint"),
    ],
)
def test_given_a_validation_by_other_models_or_releases_then_validated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other: Any
):
    """GIVEN a compiled file whose validation other models or library releases made (its digest
    made again to match, as a build with those would have) WHEN loaded THEN it is not trusted:
    the document is validated with the models running here."""
    path = tmp_path / "profiles.yaml"
    path.write_text(SHAPES["every field"], encoding="utf-8")
    assert main(["--write-json", str(path)]) == 0

    def rewrite(data: dict[str, Any]) -> None:
        other(data["validated"])
        data["validated"].setdefault("models", "")
        _redigest(data)

    _edit(path, rewrite)
    validated = _validations(monkeypatch)
    loaded = load_profiles_file(path)
    assert validated == [str(path)]
    assert loaded == load_profiles(SHAPES["every field"])


def test_given_a_json_compiled_before_the_validated_section_then_validated(tmp_path: Path):
    path = tmp_path / "profiles.yaml"
    path.write_text(SHAPES["repo"], encoding="utf-8")
    assert main(["--write-json", str(path)]) == 0
    _edit(path, lambda data: data.pop("validated"))
    assert load_profiles_file(path) == load_profiles(SHAPES["repo"])
