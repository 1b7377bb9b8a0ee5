"""The stack's own SSM Command document step that installs a certificate on a server.

The script (`ssm/install-certificate.sh`) reads its inputs from `SSM_<Name>` environment
variables: every parameter uses `interpolationType: ENV_VAR`, so no value is ever pasted into
the script text. Each parameter also carries an `allowedPattern`; `validate_parameters` applies
the very same patterns in Python so the workflow refuses a bad target before calling SSM.

The patterns use only syntax that Python `re`, POSIX ERE (bash `[[ =~ ]]`) and Java agree on:
anchors, classes, groups, alternation and bounded repeats; no lookarounds and no `\\d`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certrelay.profiles import CONFIG_TEST_PATTERN, RELOAD_ADAPTER_PATTERN
from certrelay.ssm_output import STEP_NAME

# A path segment may start with one dot (".well-known") but "." and ".." never match.
_SEGMENT = r"\.?[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"

ABSOLUTE_PATH_PATTERN = rf"^(/{_SEGMENT})+$"
DNS_NAME_PATTERN = rf"^({_LABEL}\.)*{_LABEL}$"
CERTIFICATE_NAME_PATTERN = rf"^(\*\.)?({_LABEL}\.)*{_LABEL}$"
FINGERPRINT_PATTERN = r"^[0-9a-f]{64}$"
PORT_PATTERN = (
    r"^$|^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
)
TIMEOUT_PATTERN = r"^([1-9]|[1-9][0-9]|[1-5][0-9][0-9]|600)$"
# whole days, 0-999, no leading zero (bash would read 010 as octal)
DAYS_PATTERN = r"^(0|[1-9][0-9]{0,2})$"

STEP_TIMEOUT_SECONDS = "900"


@dataclass(frozen=True)
class _Parameter:
    name: str
    description: str
    pattern: str
    default: str | None = None  # None: the caller must give a value


_PARAMETERS: tuple[_Parameter, ...] = (
    _Parameter(
        "WorkDir",
        "Directory where the fetch step left cert.pem, chain.pem, privkey.pem (encrypted "
        "PKCS#8) and passphrase (mode 0600).",
        ABSOLUTE_PATH_PATTERN,
    ),
    _Parameter(
        "ExpectedFingerprint",
        "SHA-256 of the certificate's DER encoding, 64 lowercase hex digits.",
        FINGERPRINT_PATTERN,
    ),
    _Parameter(
        "ExpectedName",
        "A DNS name the certificate must cover (exactly, or through a one-label wildcard).",
        CERTIFICATE_NAME_PATTERN,
    ),
    _Parameter("CertPath", "Where the certificate goes (mode 0644).", ABSOLUTE_PATH_PATTERN),
    _Parameter(
        "KeyPath", "Where the private key goes, decrypted (mode 0600).", ABSOLUTE_PATH_PATTERN
    ),
    _Parameter("ChainPath", "Where the CA chain goes (mode 0644).", ABSOLUTE_PATH_PATTERN),
    _Parameter(
        "ConfigTest",
        "Only with a script: Reload: script:<absolute path> of a test script, under a directory "
        "the host lists in /etc/certrelay/hook-dirs. The named adapters bring their own test.",
        CONFIG_TEST_PATTERN,
        default="",
    ),
    _Parameter(
        "Reload",
        "The reload adapter, a name and never a command line: nginx, apache, haproxy, envoy, "
        "systemd:<unit> or script:<absolute path> (under a directory the host lists in "
        "/etc/certrelay/hook-dirs). The script maps it to a config test and a reload "
        "(ssm/README.md).",
        RELOAD_ADAPTER_PATTERN,
    ),
    _Parameter(
        "VerifyHost",
        "Host name or IPv4 address to check the served certificate on.",
        DNS_NAME_PATTERN,
        default="127.0.0.1",
    ),
    _Parameter(
        "VerifyPort",
        "TLS port to check the served certificate on; empty skips the check.",
        PORT_PATTERN,
        default="",
    ),
    _Parameter(
        "VerifyServerName",
        "SNI name for the check; empty means ExpectedName.",
        "^$|" + DNS_NAME_PATTERN,
        default="",
    ),
    _Parameter(
        "VerifyTimeout",
        "Seconds to wait for the service to serve the new certificate (1-600).",
        TIMEOUT_PATTERN,
        default="20",
    ),
    _Parameter(
        "MinValidDays",
        "Refuse a certificate whose NotAfter is less than this many days away (0-999): a "
        "bundle that stale is not installed over the one the host serves.",
        DAYS_PATTERN,
        default="2",
    ),
)

PARAMETER_PATTERNS: dict[str, str] = {p.name: p.pattern for p in _PARAMETERS}
REQUIRED_PARAMETERS: frozenset[str] = frozenset(p.name for p in _PARAMETERS if p.default is None)
_COMPILED = {name: re.compile(pattern) for name, pattern in PARAMETER_PATTERNS.items()}


def validate_parameters(params: dict[str, str]) -> None:
    """Check parameters for the install step; raise ValueError naming the first bad one.

    Unknown names and missing required names are errors too. Matching is whole-string, so a
    trailing newline cannot slip past a `$` anchor.
    """
    for name in params:
        if name not in _COMPILED:
            raise ValueError(f"{name}: not a parameter of the install document")
    for name in sorted(REQUIRED_PARAMETERS - params.keys()):
        raise ValueError(f"{name}: is required")
    for name, value in params.items():
        if not isinstance(value, str):
            raise ValueError(f"{name}: must be a string, not {type(value).__name__}")
        if _COMPILED[name].fullmatch(value) is None:
            shown = value if len(value) <= 80 else value[:77] + "..."
            raise ValueError(f"{name}: {shown!r} does not match {PARAMETER_PATTERNS[name]}")


def install_document(script: str) -> dict[str, Any]:
    """The SSM Command document (schema 2.2) running `script` with ENV_VAR parameters."""
    if "{{" in script:
        # SSM would still substitute {{ Name }} into the text; the script must use SSM_<Name>.
        raise ValueError("the install script must not contain '{{': parameters are SSM_ vars")
    lines = script.splitlines()
    if not lines or not lines[0].startswith("#!"):
        raise ValueError("the install script must start with a #! line")
    parameters: dict[str, dict[str, str]] = {}
    for p in _PARAMETERS:
        spec = {
            "type": "String",
            "description": p.description if p.default is None else f"(Optional) {p.description}",
            "allowedPattern": p.pattern,
            "interpolationType": "ENV_VAR",
        }
        if p.default is not None:
            spec["default"] = p.default
        parameters[p.name] = spec
    return {
        "schemaVersion": "2.2",
        "description": (
            "certrelay: check a fetched certificate (fingerprint, key, chain, name), install it "
            "atomically with .bak copies, run the config test and reload, check the served "
            "certificate, and roll back on any failure."
        ),
        "parameters": parameters,
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": STEP_NAME,
                "precondition": {"StringEquals": ["platformType", "Linux"]},
                "inputs": {"runCommand": lines, "timeoutSeconds": STEP_TIMEOUT_SECONDS},
            }
        ],
    }


# --- the whole document: fetch, install, clean up ---------------------------------------------

_VERSION = r"^(null|[A-Za-z0-9._-]{1,1024})$"
_BUNDLE_KEY = r"^certificates/[A-Za-z0-9-]{1,64}/[0-9a-f]{1,80}/[a-z]{1,16}\.pem$"
_FETCH_PARAMETERS: tuple[_Parameter, ...] = (
    _Parameter("Bucket", "The stack's bundle bucket.", r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    _Parameter("CertKey", "S3 key of cert.pem.", _BUNDLE_KEY),
    _Parameter("ChainKey", "S3 key of chain.pem.", _BUNDLE_KEY),
    _Parameter("KeyKey", "S3 key of privkey.pem (encrypted PKCS#8).", _BUNDLE_KEY),
    _Parameter("CertVersion", "S3 version id of cert.pem, or null.", _VERSION),
    _Parameter("ChainVersion", "S3 version id of chain.pem, or null.", _VERSION),
    _Parameter("KeyVersion", "S3 version id of privkey.pem, or null.", _VERSION),
    _Parameter(
        "SecretVersion",
        "Secrets Manager version id of the passphrase for this privkey.pem, or null.",
        r"^(null|[A-Za-z0-9-]{32,64})$",
    ),
    _Parameter(
        "SecretArn",
        "Secrets Manager ARN of the passphrase that opens privkey.pem.",
        r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$",
    ),
)
DOCUMENT_PATTERNS: dict[str, str] = {
    **{p.name: p.pattern for p in _FETCH_PARAMETERS},
    **PARAMETER_PATTERNS,
}
_DOCUMENT_COMPILED = {name: re.compile(pattern) for name, pattern in DOCUMENT_PATTERNS.items()}
CLEANUP_LINES = ["#!/usr/bin/env bash", 'rm -rf -- "${SSM_WorkDir:?}"']


def validate_document_parameters(params: dict[str, str]) -> None:
    """Check everything a SendCommand of the whole document carries (fetch + install)."""
    install = {k: v for k, v in params.items() if k in PARAMETER_PATTERNS}
    for name, value in params.items():
        if name in PARAMETER_PATTERNS:
            continue
        if name not in _DOCUMENT_COMPILED:
            raise ValueError(f"{name}: not a parameter of the certificate document")
        if not isinstance(value, str) or _DOCUMENT_COMPILED[name].fullmatch(value) is None:
            raise ValueError(
                f"{name}: {str(value)[:80]!r} does not match {DOCUMENT_PATTERNS[name]}"
            )
    for parameter in _FETCH_PARAMETERS:
        if parameter.name not in params:
            raise ValueError(f"{parameter.name}: is required")
    validate_parameters(install)


def certificate_document(fetch_script: str, install_script: str) -> dict[str, Any]:
    """The stack's SSM document: fetch the bundle, install it, and always remove the work dir."""
    if "{{" in fetch_script:
        raise ValueError("the fetch script must not contain '{{': parameters are SSM_ vars")
    document = install_document(install_script)
    for p in _FETCH_PARAMETERS:
        document["parameters"][p.name] = {
            "type": "String",
            "description": p.description,
            "allowedPattern": p.pattern,
            "interpolationType": "ENV_VAR",
        }
    linux = {"StringEquals": ["platformType", "Linux"]}
    document["description"] = (
        "certrelay: fetch a certificate bundle by version and its passphrase, check it "
        "(fingerprint, key, chain, name), install it atomically with .bak copies, run the "
        "config test and reload, check the served certificate, roll back on any failure, and "
        "always remove the fetched files."
    )
    document["mainSteps"] = [
        {
            "action": "aws:runShellScript",
            "name": "fetchBundle",
            "precondition": linux,
            "onFailure": "exit",
            "inputs": {"runCommand": fetch_script.splitlines(), "timeoutSeconds": "300"},
        },
        *document["mainSteps"],
        {
            "action": "aws:runShellScript",
            "name": "removeFetchedFiles",
            "precondition": linux,
            "finallyStep": True,
            "inputs": {"runCommand": CLEANUP_LINES, "timeoutSeconds": "60"},
        },
    ]
    return document


# --- keeping the install document's template in step ----------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = ROOT / "ssm" / "fetch-bundle.sh"
INSTALL_SCRIPT = ROOT / "ssm" / "install-certificate.sh"
# The nested stack template.yaml includes (InstallDocumentStack); it holds the document only.
DOCUMENT_TEMPLATE = ROOT / "templates" / "install-document.yaml"
# The member stack (a StackSet template: no nested stack) carries its own copy, written here too.
MEMBER_TEMPLATE = ROOT / "member.yaml"
GENERATED_TEMPLATES = (DOCUMENT_TEMPLATE, MEMBER_TEMPLATE)
BEGIN = "      # ssm-document:begin (generated by python -m certrelay.ssm_document)"
END = "      # ssm-document:end"


def stack_document() -> dict[str, Any]:
    """The document the install-document template must carry, built from the two scripts in ssm/."""
    return certificate_document(
        FETCH_SCRIPT.read_text(encoding="utf-8"), INSTALL_SCRIPT.read_text(encoding="utf-8")
    )


def template_block() -> str:
    """The Content block, as YAML indented for the InstallDocument resource.

    Written without YAML anchors and aliases: CloudFormation rejects them in a template that no
    SAM transform or `package` command rewrites, as a nested template may be deployed.
    """
    import yaml

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    body = yaml.dump(
        {"Content": stack_document()}, Dumper=_NoAliases, sort_keys=False, width=100000
    )
    indented = "\n".join(f"      {line}" if line else line for line in body.splitlines())
    return f"{BEGIN}\n{indented}\n{END}"


def main() -> int:
    """Rewrite the Content block between the markers of every template that holds the document."""
    block = template_block()
    for template in GENERATED_TEMPLATES:
        text = template.read_text(encoding="utf-8")
        start, end = text.index(BEGIN), text.index(END) + len(END)
        template.write_text(text[:start] + block + text[end:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
