"""The deploy path holds together: samconfig.toml, template.yaml, README.md and docs/deploy.md
agree.

No SAM CLI here (CI does not install it; `make deploy-check` runs the real `sam validate --lint`
and `sam build`): these read the three files and translate the template offline.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from certrelay.local.nested import whole_stack
from tests.templates import read_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
README = ROOT / "README.md"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
DOCS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
DEPLOY_HEADING = "## Deploying to AWS"
PARAMETERS_HEADER = "| Parameter | Default | Meaning |"

# IAM resource types CloudFormation asks a capability for, and the property that names each one.
IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::UserToGroupAddition": None,
}
# SAM resources that expand into nested stacks need CAPABILITY_AUTO_EXPAND.
NESTED_STACK_TYPES = {"AWS::Serverless::Application", "AWS::CloudFormation::Stack"}


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    return tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def parameters() -> dict[str, dict[str, Any]]:
    return dict(read_template(TEMPLATE)["Parameters"])


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def docs_text() -> str:
    """The README and every page under docs/, the commands they show included."""
    return "\n".join(path.read_text(encoding="utf-8") for path in DOCS)


@pytest.fixture(scope="module")
def deploy_doc() -> str:
    return DEPLOY_DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def deploy_section(readme: str) -> str:
    assert DEPLOY_HEADING + "\n" in readme, f"README.md has no '{DEPLOY_HEADING}' section"
    section = readme.split(DEPLOY_HEADING + "\n", 1)[1]
    return section.split("\n## ", 1)[0]


def command_parameters(samconfig: dict[str, Any], command: str) -> dict[str, Any]:
    return dict(samconfig.get("default", {}).get(command, {}).get("parameters", {}))


def sections_with_overrides(samconfig: dict[str, Any]) -> dict[str, dict[str, str]]:
    """`env.command` -> its parameter_overrides as a dict, for every section that sets them."""
    found = {}
    for env, commands in samconfig.items():
        if not isinstance(commands, dict):
            continue  # `version`
        for command, tables in commands.items():
            overrides = tables.get("parameters", {}).get("parameter_overrides")
            if overrides is not None:
                found[f"{env}.{command}"] = parse_overrides(overrides)
    return found


def parse_overrides(value: str | list[str]) -> dict[str, str]:
    """SAM's `Key=Value Key2="a b"` string (or a list of `Key=Value` items) as a dict."""
    tokens = shlex.split(value) if isinstance(value, str) else list(value)
    pairs = {}
    for token in tokens:
        key, equals, text = token.partition("=")
        assert equals, f"parameter_overrides item {token!r} is not Key=Value"
        assert key, f"parameter_overrides item {token!r} has no key"
        pairs[key] = text
    return pairs


def capabilities(parameters: dict[str, Any]) -> set[str]:
    value = parameters.get("capabilities", [])
    return set(value.split() if isinstance(value, str) else value)


def parameters_table(deploy_doc: str) -> dict[str, str]:
    """Parameter name -> its Default cell, from docs/deploy.md's parameters table."""
    lines = deploy_doc.splitlines()
    assert PARAMETERS_HEADER in lines, f"no '{PARAMETERS_HEADER}' table in {DEPLOY_DOC.name}"
    rows = {}
    for line in lines[lines.index(PARAMETERS_HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        names = re.findall(r"`([A-Za-z0-9]+)`", cells[0])
        assert len(names) == 1, f"one parameter per row, not {cells[0]!r}"
        rows[names[0]] = cells[1]
    return rows


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.DOTALL)


# --- samconfig.toml ---------------------------------------------------------------------------


def test_samconfig_parses_with_the_deploy_defaults(samconfig):
    assert samconfig["version"] == 0.1
    assert command_parameters(samconfig, "global")["stack_name"]
    assert command_parameters(samconfig, "validate")["lint"] is True
    build = command_parameters(samconfig, "build")
    assert build["cached"] is True
    assert build["parallel"] is True
    deploy = command_parameters(samconfig, "deploy")
    assert deploy["confirm_changeset"] is True, "every deploy should show its change set first"
    assert deploy["resolve_s3"] is True
    assert deploy["s3_prefix"]


def test_every_parameter_override_is_a_template_parameter_with_an_allowed_value(
    samconfig, parameters
):
    sections = sections_with_overrides(samconfig)

    assert "default.deploy" in sections
    for section, overrides in sections.items():
        for name, value in overrides.items():
            assert name in parameters, f"[{section}] overrides {name}, not a template parameter"
            pattern = parameters[name].get("AllowedPattern")
            if pattern:
                assert re.fullmatch(pattern, value), f"[{section}] {name}={value!r} vs {pattern}"
            allowed = parameters[name].get("AllowedValues")
            if allowed:
                assert value in [str(v) for v in allowed], f"[{section}] {name}={value!r}"


def test_every_parameter_without_a_default_has_a_placeholder_the_readme_says_to_change(
    samconfig, parameters, deploy_section, deploy_doc
):
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    overrides = sections_with_overrides(samconfig)

    assert required, "expected at least FallbackOwnerEmail to need a value"
    for section in ("default.deploy", "default.sync"):
        if section == "default.sync" and "sync" not in samconfig["default"]:
            continue
        missing = required - set(overrides.get(section, {}))
        assert not missing, f"[{section}] has no parameter_overrides for {sorted(missing)}"
        for name in required:
            value = overrides[section][name]
            assert f"`{value}`" in deploy_section, (
                f"the README's deploy section should name the placeholder {value!r} to replace"
            )
            assert f"`{value}`" in deploy_doc, f"docs/deploy.md should name {value!r} too"


# --- docs/deploy.md's parameters table --------------------------------------------------------


def test_every_template_parameter_is_documented_in_the_deploy_doc(parameters, deploy_doc):
    documented = parameters_table(deploy_doc)

    undocumented = sorted(set(parameters) - set(documented))
    stale = sorted(set(documented) - set(parameters))
    assert not undocumented, f"template parameters missing from the deploy table: {undocumented}"
    assert not stale, f"deploy table rows for parameters the template lacks: {stale}"


def test_deploy_doc_defaults_match_the_template(parameters, deploy_doc):
    documented = parameters_table(deploy_doc)

    for name, cell in documented.items():
        spec = parameters.get(name, {})
        if "Default" not in spec:
            assert "required" in cell, f"{name} has no default: say '(required)', not {cell!r}"
        elif str(spec["Default"]) == "":
            assert cell == "empty", f"{name} defaults to empty, docs say {cell!r}"
        else:
            expected = f"`{spec['Default']}`"
            assert cell == expected, f"{name} defaults to {expected}, docs say {cell!r}"


# --- capabilities -----------------------------------------------------------------------------


def test_deploy_capabilities_cover_the_templates_iam_resources(samconfig):
    overrides = sections_with_overrides(samconfig)["default.deploy"]
    cloudformation = whole_stack(TEMPLATE, overrides, "eu-west-1")  # nested templates' too
    sam_types = {r.get("Type") for r in read_template(TEMPLATE)["Resources"].values()}
    given = capabilities(command_parameters(samconfig, "deploy"))

    iam = {
        logical_id: resource
        for logical_id, resource in cloudformation["Resources"].items()
        if resource["Type"] in IAM_NAME_PROPERTIES
    }
    named = sorted(
        logical_id
        for logical_id, resource in iam.items()
        if IAM_NAME_PROPERTIES[resource["Type"]] in resource.get("Properties", {})
    )

    assert iam, "the stack creates IAM roles; the check below must see them"
    if named:
        assert "CAPABILITY_NAMED_IAM" in given, f"named IAM resources {named} need it"
    else:
        assert given & {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}, f"IAM resources: {sorted(iam)}"
        assert "CAPABILITY_NAMED_IAM" not in given, "no IAM resource has a fixed name"
    if sam_types & NESTED_STACK_TYPES:
        assert "CAPABILITY_AUTO_EXPAND" in given, "nested applications need CAPABILITY_AUTO_EXPAND"


# --- the commands the README and docs/ show ---------------------------------------------------


def test_readme_deploy_commands_name_the_samconfig_stack(
    samconfig, readme, docs_text, deploy_section, deploy_doc
):
    stack_name = (
        command_parameters(samconfig, "deploy").get("stack_name")
        or command_parameters(samconfig, "global")["stack_name"]
    )
    commands = "\n".join(code_blocks(docs_text))
    # One logical command per line (continuations joined); a member stack (member.yaml, deployed
    # in the members, docs/organisation.md) is not the hub's stack.
    logical = commands.replace("\\\n", " ").splitlines()
    hub_commands = "\n".join(line for line in logical if "member.yaml" not in line)
    named = [name.strip("'\"") for name in re.findall(r"--stack-name\s+(\S+)", hub_commands)]

    for where, text in (("README.md", deploy_section), ("docs/deploy.md", deploy_doc)):
        deploy_commands = "\n".join(code_blocks(text))
        assert "sam deploy --guided" in text, where
        assert re.search(r"^sam build\b", deploy_commands, flags=re.MULTILINE), where
        assert re.search(r"^sam deploy\s*(#|$)", deploy_commands, flags=re.MULTILINE), where
    assert named, "the docs' AWS commands should name the stack"
    assert set(named) == {stack_name}, f"samconfig.toml deploys {stack_name!r}, docs: {named}"
    assert "sam delete --stack-name" in "\n".join(code_blocks(readme))


def test_readme_sam_commands_name_template_resources_and_sample_events(docs_text):
    resources = set(read_template(TEMPLATE)["Resources"])
    commands = "\n".join(code_blocks(docs_text))
    invoked = re.findall(r"sam remote invoke\s+([A-Za-z0-9]+)", commands)
    logged = re.findall(r"sam logs\b[^\n]*", commands)
    logged_names = [name for line in logged for name in re.findall(r"-n\s+([A-Za-z0-9]+)", line)]
    logical_ids = re.findall(r"--logical-resource-id\s+([A-Za-z0-9]+)", commands)
    samples = re.findall(r"\bevents/[A-Za-z0-9._-]+\.json", docs_text)

    assert invoked, "the docs should show `sam remote invoke`"
    assert logged_names, "the docs should show `sam logs -n`"
    for name in [*invoked, *logged_names, *logical_ids]:
        assert name in resources, f"the docs name {name}, not a resource of template.yaml"
    assert samples
    for sample in samples:
        assert (ROOT / sample).is_file(), f"the docs name {sample}, which does not exist"
