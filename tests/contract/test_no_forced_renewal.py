"""The export cost guard's third rule: certrelay never forces a renewal.

ACM charges again for a forced renewal (RenewCertificate) of an exportable public certificate;
only ACM's own managed renewal renews. No code path may call it and no role may be granted it.
(The local engine's `renew_certificate(fleet, …)` plays ACM's managed renewal on moto; it calls
no ACM API and is a bare function, not a client method.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.contract.test_template import allowed

ROOT = Path(__file__).resolve().parents[2]
CODE = [
    *(ROOT / "src").rglob("*.py"),
    *(ROOT / "functions").rglob("*.py"),
    *(ROOT / "statemachines").glob("*.json"),
]
# An ACM client's method, the API's name (boto3 meta, botocore, an aws-sdk integration or an IAM
# action), however it is spelt.
_FORCED_RENEWAL = re.compile(
    r"\.renew_certificate\s*\(|[\"']renew_certificate[\"']|renewcertificate", re.IGNORECASE
)


def forces_a_renewal(text: str) -> bool:
    return _FORCED_RENEWAL.search(text) is not None


def test_the_scan_sees_every_way_to_call_renew_certificate():
    assert forces_a_renewal("acm.renew_certificate(CertificateArn=arn)")
    assert forces_a_renewal('getattr(client, "renew_certificate")(CertificateArn=arn)')
    assert forces_a_renewal('"Resource": "arn:aws:states:::aws-sdk:acm:renewCertificate"')
    assert forces_a_renewal("client._make_api_call('RenewCertificate', {})")
    assert not forces_a_renewal("renewed = renew_certificate(self.fleet, seeded, issuers)")


def test_no_code_path_calls_renew_certificate():
    assert len(CODE) > 50
    callers = [
        str(path.relative_to(ROOT))
        for path in CODE
        if forces_a_renewal(path.read_text(encoding="utf-8"))
    ]
    assert callers == []


def test_no_role_is_granted_renew_certificate(translated: dict[str, Any]):
    assert allowed(translated, "acm:RenewCertificate") == set()
    assert "renewcertificate" not in json.dumps(translated).lower()
    assert allowed(translated, "acm:ExportCertificate") == {"ExportFunctionRole"}
