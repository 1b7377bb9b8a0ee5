"""The install document: ENV_VAR parameters behind allowedPattern, the same patterns in Python."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from certrelay.profiles import CONFIG_TEST_PATTERN, RELOAD_ADAPTER_PATTERN
from certrelay.ssm_document import (
    DOCUMENT_PATTERNS,
    PARAMETER_PATTERNS,
    REQUIRED_PARAMETERS,
    install_document,
    stack_document,
    validate_parameters,
)

SCRIPT_PATH = Path(__file__).resolve().parents[2] / "ssm" / "install-certificate.sh"
SCRIPT = SCRIPT_PATH.read_text(encoding="utf-8")
FINGERPRINT = "0123456789abcdef" * 4

GOOD: dict[str, list[str]] = {
    "WorkDir": ["/var/lib/certrelay/run-1", "/tmp/certrelay.AbC123", "/srv/x@y+z/.well-known"],
    "ExpectedFingerprint": [FINGERPRINT],
    "ExpectedName": ["api.internal.example.com", "*.example.com", "localhost", "API.Example.COM"],
    "CertPath": ["/etc/nginx/ssl/api.crt", "/etc/ssl/certs/a_b-c.pem"],
    "KeyPath": ["/etc/nginx/ssl/api.key", "/etc/ssl/private/.api.key"],
    "ChainPath": ["/etc/nginx/ssl/api.chain.pem"],
    "ConfigTest": ["", "script:/opt/certrelay/hooks/test-app", "script:/opt/hooks/.t_1@x+y"],
    "Reload": [
        "nginx",
        "apache",
        "haproxy",
        "envoy",
        "systemd:php8.2-fpm",
        "systemd:app@1.service",
        "script:/opt/certrelay/hooks/reload-app",
    ],
    "VerifyHost": ["127.0.0.1", "localhost", "api.internal.example.com"],
    "VerifyPort": ["", "1", "443", "8443", "65535"],
    "VerifyServerName": ["", "api.internal.example.com"],
    "VerifyTimeout": ["1", "20", "600"],
    "MinValidDays": ["0", "2", "30", "999"],
}

BAD: dict[str, list[str]] = {
    "WorkDir": ["", "relative/dir", "/", "/var/lib/", "/var//lib", "/var/./lib", "/a b"],
    "ExpectedFingerprint": ["", FINGERPRINT.upper(), FINGERPRINT[:-1], FINGERPRINT + "0"],
    "ExpectedName": [
        "",
        "-api.example.com",
        "api.example.com.",
        "a..b",
        "*.*.example.com",
        "a_b.c",
    ],
    "CertPath": ["/etc/ssl/../shadow", "/etc/ssl/..", "etc/ssl/x.pem", "/etc/ssl/x.pem/"],
    "KeyPath": ["/etc/ssl/key\x00", "/etc/ssl/ke y", "/etc/ssl/k%ey", "~/key"],
    "ChainPath": ["/etc/ssl/./chain.pem", "/etc/ssl/chain.pem\n"],
    "ConfigTest": [
        "nginx -t",
        "nginx",
        "script:",
        "script:relative/test",
        "script:/opt/hooks/../test",
        "script:/opt/hooks/test ",
        "/opt/hooks/test",
    ],
    "Reload": [
        "",
        "systemctl reload nginx",
        "/usr/sbin/nginx -s reload",
        "Nginx",
        "nginx2",
        "systemd:",
        "systemd:-nginx",
        "systemd:nginx --now",
        "systemd:nginx/../x",
        "systemd:" + "x" * 252,
        "script:/opt/hooks/./x",
        "script:/opt/hooks/",
        "script:opt/hooks/x",
        "shell:/bin/sh",
    ],
    "VerifyHost": ["", "::1", "[::1]", "host:443", "-h"],
    "VerifyPort": ["0", "65536", "99999", "0443", "-1", "443 "],
    "VerifyServerName": ["*.example.com", "a..b", " host"],
    "VerifyTimeout": ["", "0", "601", "020", "1.5"],
    "MinValidDays": ["", "-1", "1000", "02", "1.5", "2d", " 2"],
}

INJECTIONS = [
    "; rm -rf /",
    "\nrm -rf /",
    "\n",
    "$(id)",
    "`id`",
    " && id",
    "&&id",
    " | id",
    "|id",
    "'",
    '"',
    "/../../etc/shadow",
    "/..",
]


def _bad_values(name: str) -> list[str]:
    good = next(value for value in GOOD[name] if value)
    values = []
    for injection in INJECTIONS:
        values += [good + injection, injection + good, injection]
    return values


def _params(**overrides: str) -> dict[str, str]:
    params = {name: GOOD[name][0] for name in PARAMETER_PATTERNS}
    params.update(overrides)
    return params


# --- the patterns -----------------------------------------------------------------------------


def test_every_parameter_has_good_and_bad_examples() -> None:
    assert set(GOOD) == set(BAD) == set(PARAMETER_PATTERNS)


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in GOOD.items() for v in vs])
def test_good_values_pass(name: str, value: str) -> None:
    validate_parameters(_params(**{name: value}))


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in BAD.items() for v in vs])
def test_bad_values_are_refused_naming_the_parameter(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: "):
        validate_parameters(_params(**{name: value}))


@pytest.mark.parametrize("name", sorted(PARAMETER_PATTERNS))
def test_injection_attempts_are_refused_for_every_parameter(name: str) -> None:
    for value in _bad_values(name):
        with pytest.raises(ValueError, match=rf"^{name}: "):
            validate_parameters(_params(**{name: value}))


def test_the_adapter_patterns_are_the_profiles_patterns() -> None:
    assert PARAMETER_PATTERNS["Reload"] == RELOAD_ADAPTER_PATTERN
    assert PARAMETER_PATTERNS["ConfigTest"] == CONFIG_TEST_PATTERN


METACHARACTERS = [*";&|`$<>()\n'\"*?{}[]!", " ", "\t", "\r"]
SAMPLES = {  # one good value of every parameter of the stack's whole document
    **{name: next(v for v in values if v) for name, values in GOOD.items()},
    "Bucket": "certrelay-bundles-123",
    "CertKey": "certificates/abc-123/0a1b/cert.pem",
    "ChainKey": "certificates/abc-123/0a1b/chain.pem",
    "KeyKey": "certificates/abc-123/0a1b/privkey.pem",
    "CertVersion": "null",
    "ChainVersion": "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    "KeyVersion": "null",
    "SecretVersion": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE",
    "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:certrelay/export/x-AbCdEf",
}


@pytest.mark.parametrize("name", sorted(DOCUMENT_PATTERNS))
def test_no_parameter_admits_a_shell_metacharacter_or_a_blank(name: str) -> None:
    """SSM-01: wherever a command could go, no pattern lets a shell or a second word in."""
    pattern = re.compile(DOCUMENT_PATTERNS[name])
    good = SAMPLES[name]
    assert pattern.fullmatch(good), name
    middle = len(good) // 2
    for char in METACHARACTERS:
        for value in (good + char, char + good, good[:middle] + char + good[middle:], char):
            if name == "ExpectedName" and value.startswith("*.") and "*" not in value[1:]:
                continue  # the one wildcard label a certificate name may start with
            assert not pattern.fullmatch(value), f"{name} admits {value!r}"


def test_every_parameter_of_the_stack_document_keeps_its_pattern_and_env_var() -> None:
    parameters = stack_document()["parameters"]

    assert set(parameters) == set(DOCUMENT_PATTERNS)
    for name, spec in parameters.items():
        assert spec["allowedPattern"] == DOCUMENT_PATTERNS[name], name
        assert spec["interpolationType"] == "ENV_VAR", name


def test_required_parameters_must_be_present() -> None:
    params = _params()
    del params["KeyPath"]
    with pytest.raises(ValueError, match=r"^KeyPath: is required$"):
        validate_parameters(params)
    optional = {
        "ConfigTest", "VerifyHost", "VerifyPort", "VerifyServerName", "VerifyTimeout",
        "MinValidDays",
    }  # fmt: skip
    validate_parameters({k: v for k, v in _params().items() if k not in optional})
    assert set(PARAMETER_PATTERNS) - optional == REQUIRED_PARAMETERS


def test_unknown_parameters_and_non_strings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^Commands: not a parameter"):
        validate_parameters(_params(Commands="id"))
    with pytest.raises(ValueError, match=r"^VerifyPort: must be a string"):
        validate_parameters(_params(VerifyPort=443))  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_patterns_mean_the_same_to_posix_ere() -> None:
    """SSM applies allowedPattern with its own engine: keep to syntax every engine shares."""
    cases = [(n, v) for n, vs in (*GOOD.items(), *BAD.items()) for v in vs if "\x00" not in v]
    program = (
        'while IFS= read -r -d "" re && IFS= read -r -d "" v; do [[ $v =~ $re ]]; echo $?; done'
    )
    stdin = "".join(f"{PARAMETER_PATTERNS[n]}\0{v}\0" for n, v in cases)
    done = subprocess.run(
        ["bash", "-c", program], input=stdin, capture_output=True, text=True, timeout=30, check=True
    )
    ere = [line == "0" for line in done.stdout.splitlines()]
    python = [re.fullmatch(PARAMETER_PATTERNS[n], v) is not None for n, v in cases]
    assert ere == python
    for pattern in PARAMETER_PATTERNS.values():
        assert not re.search(r"\(\?|\\[dDwWsSbBzZ]", pattern)  # no lookarounds, no shorthands


# --- the document -----------------------------------------------------------------------------


def test_the_document_is_a_schema_2_2_command_document_running_the_script() -> None:
    document = install_document(SCRIPT)

    assert document["schemaVersion"] == "2.2"
    assert document["description"]
    [step] = document["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    assert step["inputs"]["runCommand"] == SCRIPT.splitlines()
    assert "\n".join(step["inputs"]["runCommand"]) + "\n" == SCRIPT


def test_every_parameter_is_an_env_var_string_behind_its_pattern() -> None:
    parameters = install_document(SCRIPT)["parameters"]

    assert set(parameters) == set(PARAMETER_PATTERNS)
    for name, spec in parameters.items():
        assert spec["type"] == "String"
        assert spec["interpolationType"] == "ENV_VAR"
        assert spec["allowedPattern"] == PARAMETER_PATTERNS[name]
        assert spec["description"]
        if name in REQUIRED_PARAMETERS:
            assert "default" not in spec
        else:
            # SSM checks defaults against allowedPattern too
            assert re.fullmatch(spec["allowedPattern"], spec["default"]), name


def test_the_script_reads_every_parameter_from_its_environment_variable() -> None:
    for name in PARAMETER_PATTERNS:
        assert f"SSM_{name}" in SCRIPT
    assert set(re.findall(r"SSM_([A-Za-z]+)", SCRIPT)) == set(PARAMETER_PATTERNS)


def test_the_script_is_not_interpolated_and_keeps_secrets_off_command_lines() -> None:
    assert "{{" not in SCRIPT
    assert "set -x" not in SCRIPT
    assert "eval" not in SCRIPT.split()
    assert re.findall(r"-passin \S+", SCRIPT) == ['-passin "file:$work_dir/passphrase"']
    assert SCRIPT.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in SCRIPT


def test_a_script_with_double_braces_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\{\{"):
        install_document("#!/bin/bash\necho {{ Reload }}\n")
