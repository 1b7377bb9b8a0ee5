"""The document's fetch step (ssm/fetch-bundle.sh) run by bash with a stand-in `aws` first on
PATH: a server in a member account, perhaps in another Region, asks the hub's Region."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

FETCH = Path(__file__).resolve().parents[2] / "ssm" / "fetch-bundle.sh"
SECRET = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:certrelay/export/abc/01-AbCdEf"
FAKE_AWS = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "${AWS_CALLS}"
case "$*" in
  *secretsmanager*) echo passphrase ;;
  *) out="${@: -1}"; echo pem > "${out}" ;;
esac
"""


def test_every_fetch_asks_the_region_of_the_stacks_secret(tmp_path: Path) -> None:
    # GIVEN a server (its own Region us-east-2) and a bundle whose secret is in eu-west-1
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "aws").write_text(FAKE_AWS, encoding="utf-8")
    (tools / "aws").chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        "PATH": f"{tools}:{os.environ['PATH']}",
        "AWS_REGION": "us-east-2",
        "AWS_CALLS": str(calls),
        "SSM_WorkDir": str(tmp_path / "work"),
        "SSM_Bucket": "certrelay-bundles",
        "SSM_SecretArn": SECRET,
        "SSM_SecretVersion": "null",
        **{f"SSM_{n}Key": f"certificates/abc/01/{n.lower()}.pem" for n in ("Cert", "Chain", "Key")},
        **{f"SSM_{n}Version": "null" for n in ("Cert", "Chain", "Key")},
    }
    # WHEN the fetch step runs
    done = subprocess.run(
        ["bash", str(FETCH)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    # THEN the three objects and the passphrase are fetched, each from eu-west-1
    assert done.returncode == 0, done.stderr
    made = [shlex.split(line) for line in calls.read_text(encoding="utf-8").splitlines()]
    assert [call[:2] for call in made] == [["s3api", "get-object"]] * 3 + [
        ["secretsmanager", "get-secret-value"]
    ]
    for call in made:
        assert call[call.index("--region") + 1] == "eu-west-1", call
    assert (tmp_path / "work" / "passphrase").read_text(encoding="utf-8") == "passphrase\n"
