"""Input validators match the whole value: a trailing newline is not part of any valid value.

Python's `$` also matches just before a final newline, so `re.match(r"^...$", value)` takes
"value\n". Every validator uses `fullmatch` (or `\\Z`); these cases keep them from drifting back.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from certrelay import bundles, export, mail, profiles
from certrelay.errors import CertrelayError
from certrelay.events import CERTIFICATE_ARN

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/61f50cd4-45b9-4259-b049-d0a53682fa4b"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:certrelay:run-1"


def _refuses(check: Callable[[str], object]) -> Callable[[str], bool]:
    def refused(value: str) -> bool:
        try:
            check(value)
        except (ValueError, CertrelayError):
            return True
        return False

    return refused


def _export_arn(arn: str) -> object:
    return export._certificate_arn({"decision": {"certificate": {"arn": arn}}})


def _bundle_arn(arn: str) -> object:
    """find_bundle refuses an ARN before it reads S3: a valid one reaches the (absent) client."""
    try:
        return bundles.find_bundle(None, "bucket", arn, "0a1b")
    except AttributeError:
        return "looked for the bundle"


VALIDATORS: list[tuple[str, str, Callable[[str], bool]]] = [
    ("event certificate ARN", ARN, lambda v: CERTIFICATE_ARN.fullmatch(v) is None),
    ("export certificate ARN", ARN, _refuses(_export_arn)),
    ("bundle certificate ARN", ARN, _refuses(_bundle_arn)),
    ("console URL execution ARN", EXECUTION, lambda v: mail.console_url_for(v) == ""),
    ("profile bucket", "partner-bundles", _refuses(profiles._bucket_name)),
    ("profile prefix", "web/", _refuses(profiles._prefix)),
    ("profile path", "/etc/ssl/web/cert.pem", _refuses(profiles._absolute_path)),
    ("profile KMS key", "alias/bundles", _refuses(profiles._kms_key)),
    ("profile reload adapter", "systemd:nginx", _refuses(profiles._reload_adapter)),
    ("profile config test", "script:/opt/hooks/test", _refuses(profiles._config_test)),
    ("profile script dir", "/opt/hooks", _refuses(profiles._script_dir)),
    ("profile window time", "02:30", _refuses(profiles._hhmm)),
]


@pytest.mark.parametrize(("what", "valid", "refused"), VALIDATORS, ids=[v[0] for v in VALIDATORS])
def test_a_valid_value_passes_and_the_same_value_with_a_trailing_newline_is_refused(
    what: str, valid: str, refused: Callable[[str], bool]
) -> None:
    assert not refused(valid), f"{what}: the valid value itself is refused"
    assert refused(valid + "\n"), f"{what}: a trailing newline passes"
