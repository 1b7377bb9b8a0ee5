"""Distribution profiles: who owns a class of certificates and where renewed ones go.

Profiles live in a YAML file deployed with the stack (`config/profiles.yaml`). A bad file is
reported at load time as one `ProfileError` line naming the file, the profile and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from certrelay.approval_policy import Mode as ApprovalMode
from certrelay.errors import ProfileError

# Reload and config test reach the host as adapter names, never as command lines: the host script
# (ssm/install-certificate.sh) maps each name to its commands. certrelay.ssm_document builds the
# document's allowedPattern from these same pieces.
NAMED_ADAPTERS = ("nginx", "apache", "haproxy", "envoy")
SYSTEMD_UNIT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,250}"
# An absolute path: segments of letters, digits and . _ - @ +, a segment may start with one dot
# (".well-known") but "." and ".." never match.
SCRIPT_PATH_PATTERN = r"(/\.?[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+"
RELOAD_ADAPTER_PATTERN = (
    rf"^({'|'.join(NAMED_ADAPTERS)}|systemd:{SYSTEMD_UNIT_PATTERN}|script:{SCRIPT_PATH_PATTERN})$"
)
CONFIG_TEST_PATTERN = rf"^$|^script:{SCRIPT_PATH_PATTERN}$"
# EC2 instances (i-, 8 or 17 hex digits) and SSM managed instances of a hybrid fleet (mi-, 17).
INSTANCE_ID_PATTERN = r"^(i-[0-9a-f]{8}([0-9a-f]{9})?|mi-[0-9a-f]{17})$"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_PATH = re.compile(r"^[A-Za-z0-9._/@+-]+$")
_KMS_KEY = re.compile(
    r"^(alias/[A-Za-z0-9/_-]+|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
    r"|arn:aws(-[a-z]+)*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+)$"
)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _bucket_name(value: str) -> str:
    if not _BUCKET.fullmatch(value) or ".." in value or _IP_ADDRESS.fullmatch(value):
        raise ValueError("must be an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
    return value


def _prefix(value: str) -> str:
    if value.startswith("/") or ".." in value.split("/") or (value and not _PATH.fullmatch(value)):
        raise ValueError(
            "must be a relative key prefix without '..' (letters, digits, . _ - / @ +)"
        )
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    if ".." in value.split("/"):
        raise ValueError("must not contain '..'")
    if not _PATH.fullmatch(value) or value.endswith("/"):
        raise ValueError("must be a file path of letters, digits and . _ - / @ +")
    return value


def _kms_key(value: str) -> str:
    if not _KMS_KEY.fullmatch(value):
        raise ValueError("must be a KMS key id, key ARN, alias/<name> or alias ARN")
    return value


_ADAPTER_HELP = (
    "nginx, apache, haproxy, envoy, systemd:<unit> or script:<absolute path under script_dirs>"
)
_SERVICE_ADAPTERS = {  # a program or unit named in an old command line -> its adapter
    **{name: name for name in ("nginx", "haproxy", "envoy")},
    **{name: "apache" for name in ("apache2", "httpd", "apachectl", "apache2ctl")},
}


def _reload_adapter(value: str) -> str:
    if re.fullmatch(RELOAD_ADAPTER_PATTERN, value):
        return value
    if " " in value.strip() or value.startswith("/"):
        raise ValueError(
            f"{value!r} is a command line; certrelay runs no free-form commands on servers: "
            f"write reload: {_suggest(value)} (adapters: {_ADAPTER_HELP})"
        )
    raise ValueError(f"{value!r} is not a reload adapter; use one of {_ADAPTER_HELP}")


def _suggest(command: str) -> str:
    """The adapter an old command line meant, e.g. 'systemctl reload nginx' -> nginx."""
    words = command.split()
    services = [w.removesuffix(".service") for w in words if not w.startswith("-")]
    for word in services:
        name = word.rsplit("/", 1)[-1]
        if name in _SERVICE_ADAPTERS:
            return _SERVICE_ADAPTERS[name]
    if len(words) == 3 and words[:2] in (["systemctl", "reload"], ["service", "reload"]):
        unit = words[2].removesuffix(".service")
        if re.fullmatch(SYSTEMD_UNIT_PATTERN, unit):
            return f"systemd:{unit}"
    return "script:<path of an executable under one of the profile's script_dirs>"


def _config_test(value: str) -> str:
    if re.fullmatch(CONFIG_TEST_PATTERN, value) and value:
        return value
    raise ValueError(
        f"{value!r} is not a config test: the named adapters bring their own; a script: "
        "adapter may name a test script as config_test: script:<absolute path under script_dirs>"
    )


def _script_dir(value: str) -> str:
    value = _absolute_path(value.rstrip("/") or "/")  # "/" itself is refused there
    if not re.fullmatch(SCRIPT_PATH_PATTERN, value):
        raise ValueError("must be a directory path without '.' or '..' segments")
    return value


def _server_name(value: str) -> str:
    if not re.fullmatch(
        r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
        value,
    ):
        raise ValueError("must be a DNS name (no wildcard): the name a client asks for")
    return value


def _approval_alias(value: object) -> object:
    """`required` (config files written before approval policies) means `human`."""
    return "human" if value == "required" else value


def _hhmm(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise ValueError("must be a time HH:MM between 00:00 and 23:59")
    return value


def _timezone(value: str) -> str:
    if value != "UTC":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as UTC or Europe/Berlin") from None
    return value


BucketName = Annotated[str, AfterValidator(_bucket_name)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
InstanceId = Annotated[str, StringConstraints(pattern=INSTANCE_ID_PATTERN)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ProfileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class MaintenanceWindow(_Strict):
    """When distribution may touch servers; an end before the start spans midnight."""

    days: list[Weekday] = Field(min_length=1)
    start: Annotated[str, AfterValidator(_hhmm)]
    end: Annotated[str, AfterValidator(_hhmm)]
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"

    @model_validator(mode="after")
    def _not_empty(self) -> MaintenanceWindow:
        if self.start == self.end:
            raise ValueError("window start and end must differ")
        return self


# A target's own name; its id in the workflow is `<profile>#<name>` (or `<profile>#<n>`, n from 1).
TARGET_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,47}$"
TargetName = Annotated[str, StringConstraints(pattern=TARGET_NAME_PATTERN)]
MAX_TARGETS = 100  # per profile: keeps every distribution far below Step Functions' quotas


class _Named(_Strict):
    name: TargetName | None = None


class S3Target(_Named):
    """Copy the bundle into a bucket (e.g. a partner's mTLS trust bundle)."""

    kind: Literal["s3"]
    bucket: BucketName
    prefix: Annotated[str, AfterValidator(_prefix)] = ""
    kms_key: Annotated[str, AfterValidator(_kms_key)] | None = None
    # the encrypted key and the manifest (which names the passphrase secret) only on request
    include_key: bool = False


class ServerTarget(_Named):
    """Install on EC2 hosts through the stack's SSM document, chosen by id or by tags."""

    kind: Literal["server"]
    instances: list[InstanceId] | None = Field(None, min_length=1)
    tags: dict[str, str] | None = Field(None, min_length=1)
    cert_path: AbsolutePath
    key_path: AbsolutePath
    chain_path: AbsolutePath
    # an adapter name: the host maps it to a config test and a reload (ssm/README.md)
    reload: Annotated[str, AfterValidator(_reload_adapter)]
    # only with a script: reload; the named adapters bring their own config test
    config_test: Annotated[str, AfterValidator(_config_test)] | None = None
    verify_port: int | None = Field(None, ge=1, le=65535)
    # the SNI name to check on verify_port; needed when the certificate's name is a wildcard
    verify_server_name: Annotated[str, AfterValidator(_server_name)] | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> ServerTarget:
        if (self.instances is None) == (self.tags is None):
            raise ValueError("give either instances (EC2 ids) or tags ({key: value}), not both")
        if self.config_test and not self.reload.startswith("script:"):
            raise ValueError(
                f"config_test: the {self.reload} adapter runs its own config test; "
                "remove config_test (only a script: reload takes one)"
            )
        return self

    def scripts(self) -> list[tuple[str, str]]:
        """(field, path) of each script this target runs."""
        named = (("reload", self.reload), ("config_test", self.config_test or ""))
        return [(f, v.removeprefix("script:")) for f, v in named if v.startswith("script:")]


Target = Annotated[S3Target | ServerTarget, Field(discriminator="kind")]


class Profile(_Strict):
    """Owners, approval rules, maintenance window and targets for a class of certificates."""

    owners: list[EmailStr] = Field(default_factory=list)
    approvers: list[EmailStr] = Field(default_factory=list)
    # who approves a renewal (certrelay.approval_policy): a person, the policy, or the policy
    # unless something changed; "required" is the older spelling of "human"
    approval: Annotated[ApprovalMode, BeforeValidator(_approval_alias)] = "human"
    approval_timeout_hours: int | None = Field(None, ge=1, le=168)
    escalation: list[EmailStr] = Field(default_factory=list)
    # routine outcomes mailed at once, or collected into one daily digest (certrelay.delivery)
    notify: Literal["immediate", "digest"] = "immediate"
    window: MaintenanceWindow | None = None
    max_concurrency: int | None = Field(None, ge=1, le=40)
    # the export cost guard: at most this many ExportCertificate calls per UTC day (export_guard)
    exports_per_day: int = Field(20, ge=1, le=1000)
    # directories whose executables a server target may name as script:<path>
    script_dirs: list[Annotated[str, AfterValidator(_script_dir)]] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)

    @model_validator(mode="after")
    def _someone_approves(self) -> Profile:
        if self.approval != "auto" and self.targets and not self.approvers:
            raise ValueError(f"approval is '{self.approval}' but no approvers are listed")
        return self

    @model_validator(mode="after")
    def _scripts_in_allowed_dirs(self) -> Profile:
        for index, target in enumerate(self.targets):
            if not isinstance(target, ServerTarget):
                continue
            for field, path in target.scripts():
                if not any(path.startswith(f"{d}/") for d in self.script_dirs):
                    allowed = ", ".join(self.script_dirs) or "none listed"
                    raise ValueError(
                        f"targets[{index}].{field}: {path} is not under a directory in "
                        f"script_dirs ({allowed})"
                    )
        return self

    @model_validator(mode="after")
    def _targets_fit_one_execution(self) -> Profile:
        if len(self.targets) > MAX_TARGETS:
            raise ValueError(
                f"has {len(self.targets)} targets; at most {MAX_TARGETS} fit one execution "
                "(split the profile)"
            )
        names = [t.name for t in self.targets if t.name is not None]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"target names must be unique: {', '.join(duplicates)}")
        return self

    def target_ids(self, profile_name: str) -> list[tuple[str, S3Target | ServerTarget]]:
        """Each target with its stable id: `<profile>#<name>`, or `<profile>#<n>` (n from 1)."""
        return [
            (f"{profile_name}#{target.name or index}", target)
            for index, target in enumerate(self.targets, start=1)
        ]


class _ProfilesFile(_Strict):
    profiles: dict[ProfileName, Profile] | None = None


def load_profiles(text: str, *, source: str = "profiles.yaml") -> dict[str, Profile]:
    """Parse and validate profiles YAML; empty content means no profiles."""
    from certrelay.profiles_yaml import parse  # PyYAML: only where YAML is parsed

    return _validated(parse(text, source=source), source=source)


def load_profiles_file(path: str | Path | None) -> dict[str, Profile]:
    """Load profiles from a file; no path or a missing file means no profiles.

    When `profiles.json` beside it was compiled from exactly these bytes (its sha256 matches),
    its document is used instead of parsing the YAML again, without PyYAML
    (`python -m certrelay.profiles_compile --write-json`): the profiles the build's validation
    produced are taken as they are (`trusted_profiles`) when they carry this code's MODELS
    fingerprint and their digest holds, else the document is validated here with the same
    models. Any other JSON (an edited YAML, a missing or damaged JSON) is ignored and the YAML
    parsed.
    """
    if path is None:
        return {}
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ProfileError(f"{file}: cannot be read ({error.strerror})") from None
    text = raw.decode("utf-8")
    compiled = compiled_document(file, raw)
    if compiled is not None:
        trusted = trusted_profiles(compiled)
        if trusted is not None:
            return trusted
        return _validated(compiled["document"], source=str(file))
    return load_profiles(text, source=str(file))


def compiled_path(file: Path) -> Path:
    """Where a profiles file's compiled JSON lives: beside it, `<name>.json`."""
    return file.with_suffix(".json")


def compiled_document(file: Path, raw: bytes) -> dict[str, object] | None:
    """The JSON compiled from exactly `raw` (file's bytes), or None when there is none."""
    try:
        compiled = json.loads(compiled_path(file).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(compiled, dict) or compiled.get("sha256") != hashlib.sha256(raw).hexdigest():
        return None
    if "document" not in compiled:
        return None
    return compiled


# The models that validate profiles, fingerprinted: this module's source (without this line),
# certrelay.approval_policy's, and the build's reading of the YAML and writing of the result
# (certrelay.profiles_yaml, certrelay.profiles_compile; profiles_compile.models_fingerprint;
# tests/unit/test_profiles_trusted.py keeps it true: any edit here changes it). The build writes
# the fingerprint of the models that validated a profiles.json into it; the functions take that
# validation's result only when it is this one and the libraries are the same releases.
MODELS = "sha256:739220a1b9f96b3bf98c6abad356e8448d4e98ad81a8d4faa318bc3d502340a4"


def model_libraries() -> dict[str, str]:
    """The releases of the libraries that run the models' validation (EmailStr's is
    email-validator, read from its metadata: importing it costs a function's init 20-40 ms)."""
    return {
        "email-validator": metadata.version("email-validator"),
        "pydantic": pydantic.VERSION,
        "pydantic-core": pydantic_core.__version__,
    }


def validated_digest(
    yaml_sha256: object, document: object, models: object, profiles: object
) -> str:
    """The digest a compiled file's `validated` section carries: over the YAML's hash, the
    document, the models' fingerprint and the validated profiles, so an edit of any of them
    (by hand, or a document compiled for other models) is seen."""
    canonical = json.dumps(
        [yaml_sha256, document, models, profiles], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def trusted_profiles(compiled: dict[str, object]) -> dict[str, Profile] | None:
    """The profiles the build validated, made without validating again, or None.

    Only when the compiled file says that these exact models (MODELS) validated its document,
    under the library releases running here, and its digest holds: then its `profiles` are
    `model_dump(mode="json", exclude_unset=True)` of the validated profiles, and
    `model_construct` (pydantic's way to make models from trusted data) rebuilds the same
    objects, with the same fields set. Anything else (no `validated` section, other models or
    releases, a digest that does not hold) is None: the caller validates the document. This
    guards against stale and hand-edited files; whoever can write the deployed files can write
    the code beside them too.
    """
    validated = compiled.get("validated")
    if not isinstance(validated, dict) or validated.get("models") != MODELS:
        return None
    libraries = model_libraries()
    if validated.get("libraries") != libraries:
        return None
    profiles: Any = validated.get("profiles")
    models = [MODELS, libraries]
    digest = validated_digest(compiled["sha256"], compiled["document"], models, profiles)
    if validated.get("sha256") != digest or not isinstance(profiles, dict):
        return None
    return {name: _constructed_profile(fields) for name, fields in profiles.items()}


_TARGET_MODELS: dict[str, type[S3Target] | type[ServerTarget]] = {
    "s3": S3Target,
    "server": ServerTarget,
}


def _constructed_profile(fields: dict[str, Any]) -> Profile:
    """A validated profile's dump made into the models again (a window and targets nested)."""
    values = dict(fields)
    if isinstance(values.get("window"), dict):
        values["window"] = MaintenanceWindow.model_construct(**values["window"])
    if "targets" in values:
        values["targets"] = [
            _TARGET_MODELS[target["kind"]].model_construct(**target) for target in values["targets"]
        ]
    return Profile.model_construct(**values)


def _validated(data: object, *, source: str) -> dict[str, Profile]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: must be a mapping with a top-level 'profiles' key")
    try:
        parsed = _ProfilesFile.model_validate(data)
    except ValidationError as error:
        raise ProfileError(f"{source}: {_explain(error)}") from None
    return dict(parsed.profiles or {})


_PROBLEMS = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "too_short": "must not be empty",
    "union_tag_not_found": "needs a kind ('s3' or 'server')",
    "union_tag_invalid": "kind must be 's3' or 'server'",
}


def _explain(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    return f"{_where(first)}: {_problem(first)}"


def _where(error: ErrorDetails) -> str:
    loc = list(error["loc"])
    if loc[:1] == ["profiles"] and len(loc) >= 2:
        head = f"profile {loc[1]!r}"
        path = _dotted(loc[2:])
        return f"{head}, {path}" if path else head
    return _dotted(loc) or "profiles"


def _dotted(loc: list[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("s3", "server") and text.endswith("]"):
            continue  # the discriminated union's branch name, not a field
        elif part not in ("function-after", "[key]"):
            text += f".{part}" if text else part
    return text


def _problem(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
        email_problem = message.removeprefix("value is not a valid email address: ")
        if email_problem != message:
            return f"{error['input']!r} is not a valid email address ({email_problem.rstrip('.')})"
        return message
    if kind == "string_pattern_mismatch":
        return _pattern_problem(str(ctx.get("pattern", "")), error["input"])
    if kind in ("less_than_equal", "greater_than_equal"):
        return error["msg"].lower().replace("input should be", "must be")
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')} (got {error['input']!r})"
    return _PROBLEMS.get(kind, error["msg"]).replace("\n", " ")


def _pattern_problem(pattern: str, value: object) -> str:
    if pattern == INSTANCE_ID_PATTERN:
        return (
            f"{value!r} is not an EC2 instance id (i- followed by 8 or 17 hex digits) "
            "or a managed-instance id (mi- followed by 17 hex digits)"
        )
    if pattern == TARGET_NAME_PATTERN:
        return f"{value!r} is not a valid target name (a letter, then letters, digits, . _ -)"
    return f"{value!r} is not a valid profile name (letters, digits, '.', '_', '-')"
