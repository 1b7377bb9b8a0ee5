"""The SendCommand that installs on servers: references only, bounded in time and in spread."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import boto3
from botocore.stub import Stubber

from certrelay.distribution import InstallSettings, Resolved, send_install
from certrelay.profiles import ServerTarget

DOCUMENT = "certrelay-InstallDocument-ABC123"
BUCKET = "certrelay-bundles-123456789012"
CERT_ID = "0000aaaa-1111-2222-3333-444455556666"
SERIAL = "0a0b"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:certrelay/export/web-AbCdEf"
SECRET_VERSION = "0123456789abcdef0123456789abcdef"
PASSPHRASE = "correct-horse-battery-staple-42"
FINGERPRINT = "ab" * 32
COMMAND_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
BUNDLE: dict[str, Any] = {
    "bucket": BUCKET,
    "keys": {
        name: f"certificates/{CERT_ID}/{SERIAL}/{name}.pem"
        for name in ("cert", "chain", "fullchain", "privkey", "manifest")
    },
    "versions": {"cert": "v-cert.1", "chain": "v-chain.1", "privkey": "v-key.1"},
    "fingerprint": FINGERPRINT,
    "serial": SERIAL,
    "secret_arn": SECRET,
    "secret_version": SECRET_VERSION,
    # what a careless caller might hand along: none of it may reach SSM
    "passphrase": PASSPHRASE,
    "privkey_pem": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n",
}
CERT_PATH, KEY_PATH, CHAIN_PATH = (
    "/etc/nginx/tls/api.crt",
    "/etc/nginx/tls/api.key",
    "/etc/nginx/tls/chain.crt",
)
SECRET_SHAPED = re.compile(r"BEGIN|PRIVATE KEY|pass(word|phrase)", re.IGNORECASE)


def resolved(**selection: Any) -> Resolved:
    target = ServerTarget(
        kind="server",
        cert_path=CERT_PATH,
        key_path=KEY_PATH,
        chain_path=CHAIN_PATH,
        reload="nginx",
        verify_port=443,
        **selection,
    )
    return Resolved("web#0", target, "api.example.com", BUNDLE)


# Exactly the document parameters the install carries: references to the bundle and the secret,
# the checks' expectations, and the target's settings.
REFERENCES = {
    "WorkDir": f"/var/lib/certrelay/{SERIAL}-{hashlib.sha256(CERT_PATH.encode()).hexdigest()[:12]}",
    "Bucket": BUCKET,
    "CertKey": f"certificates/{CERT_ID}/{SERIAL}/cert.pem",
    "ChainKey": f"certificates/{CERT_ID}/{SERIAL}/chain.pem",
    "KeyKey": f"certificates/{CERT_ID}/{SERIAL}/privkey.pem",
    "CertVersion": "v-cert.1",
    "ChainVersion": "v-chain.1",
    "KeyVersion": "v-key.1",
    "SecretArn": SECRET,
    "SecretVersion": SECRET_VERSION,
    "ExpectedFingerprint": FINGERPRINT,
    "ExpectedName": "api.example.com",
    "CertPath": CERT_PATH,
    "KeyPath": KEY_PATH,
    "ChainPath": CHAIN_PATH,
    "Reload": "nginx",
    "VerifyPort": "443",
}


def send(target: Resolved, selection: dict[str, Any], instances: list[str]) -> dict[str, Any]:
    """send_install as install_callbacks.start calls it; the stub pins every field of the call.

    Returns the parameters the client really sent, next to send_install's answer.
    """
    ssm = boto3.client("ssm", region_name="us-east-1")
    seen: list[dict[str, Any]] = []
    ssm.meta.events.register(
        "provide-client-params.ssm.SendCommand", lambda params, **_: seen.append(params)
    )
    with Stubber(ssm) as stub:
        stub.add_response(
            "send_command",
            {"Command": {"CommandId": COMMAND_ID, "InstanceIds": instances}},
            expected_params={
                "DocumentName": DOCUMENT,
                "Parameters": {name: [value] for name, value in REFERENCES.items()},
                "TimeoutSeconds": 600,
                "Comment": f"certrelay install {SERIAL}",
                "MaxErrors": "100%",
                "MaxConcurrency": "50%",
                **selection,
            },
        )
        answer = send_install(
            ssm, target.bundle, target.spec, name=target.name, settings=InstallSettings(DOCUMENT)
        )
        stub.assert_no_pending_responses()
    (params,) = seen
    return {"answer": answer, "params": params}


def assert_no_key_material(params: dict[str, Any]) -> None:
    for name, values in params["Parameters"].items():
        assert not SECRET_SHAPED.search(name), name
        for value in values:
            assert not SECRET_SHAPED.search(value), (name, value)
            assert PASSPHRASE not in value, name
    assert PASSPHRASE not in str(params)
    assert not SECRET_SHAPED.search(str(params))


def test_given_named_servers_when_installing_then_ssm_gets_references_and_bounded_limits() -> None:
    instances = ["i-0123456789abcdef0", "i-0fedcba9876543210"]
    sent = send(resolved(instances=instances), {"InstanceIds": instances}, instances)
    assert sent["answer"] == {
        "command_id": COMMAND_ID, "instances": instances, "status": "SENT", "attempt": 0,
    }  # fmt: skip
    assert_no_key_material(sent["params"])


def test_given_a_tag_selection_when_installing_then_the_same_limits_go_with_ssm_targets() -> None:
    selection = {
        "Targets": [
            {"Key": "tag:certrelay:role", "Values": ["web"]},
            {"Key": "tag:env", "Values": ["prod"]},
        ]
    }
    target = resolved(tags={"certrelay:role": "web", "env": "prod"})
    sent = send(target, selection, ["i-0123456789abcdef0"])
    assert sent["answer"]["instances"] == ["i-0123456789abcdef0"]
    assert "InstanceIds" not in sent["params"]
    assert_no_key_material(sent["params"])
