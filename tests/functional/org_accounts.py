"""moto with several accounts, for the hub's cross-account tests.

AssumeRole switches accounts only when MOTO_ACCOUNT_ID is unset; keys moto does not know (the
hub function's own) map to DEFAULT_ACCOUNT_ID, patched to the hub's account.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from certrelay.organization import Organization

HUB, MEMBER, OUTSIDER = "111111111111", "222222222222", "999999999999"
REGION = "us-east-1"
EXTERNAL_ID = "hub-external-id-0123456789"
ORGANIZATION = Organization(
    mode="hub",
    hub_account=HUB,
    hub_region=REGION,
    partition="aws",
    member_accounts=frozenset({MEMBER, "333333333333"}),
    regions=frozenset({REGION, "eu-west-1"}),
    external_id=EXTERNAL_ID,
)
HUB_ENV = {  # what the template sets in hub mode (Globals)
    "AWS_REGION": REGION,
    "STACK_ACCOUNT_ID": HUB,
    "STACK_PARTITION": "aws",
    "ORGANIZATION_MODE": "hub",
    "MEMBER_ACCOUNT_IDS": "222222222222,333333333333",
    "MEMBER_REGIONS": "eu-west-1",
    "MEMBER_EXTERNAL_ID": EXTERNAL_ID,
}


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("moto.iam.models.DEFAULT_ACCOUNT_ID", HUB)
    with mock_aws():
        yield


class RecordingClients:
    """boto3.client, remembering every client made and every AssumeRole asked for."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []
        self.assumed: list[dict[str, Any]] = []

    def __call__(self, service: str, **kwargs: Any) -> Any:
        self.made.append((service, kwargs))
        client = boto3.client(service, **kwargs)
        if service == "sts":
            client.meta.events.register(
                "provide-client-params.sts.AssumeRole",
                lambda params, **_: self.assumed.append(dict(params)),
            )
        return client

    def roles(self) -> list[str]:
        return [str(a["RoleArn"]) for a in self.assumed]
