"""The engine reads an execution's history from moto's backend instead of through the API.

GIVEN an execution the engine ran, WHEN its history is read, THEN it is exactly what
GetExecutionHistory returns (same events, same fields, timestamps as botocore parses them);
GIVEN an execution ARN nobody started, THEN reading its history raises AWS's
ExecutionDoesNotExist, as the API does.
"""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from certrelay.local.engine import LocalEngine

from .conftest import only_execution, send


def test_a_history_read_from_the_backend_equals_the_one_the_api_returns(
    engine: LocalEngine,
) -> None:
    execution = only_execution(send(engine, "approaching-expiration.json", "legacy-imported"))

    from_backend = engine.history(execution.arn)
    from_api = engine._history_from_api(execution.arn)

    assert len(from_backend) > 10
    assert from_backend == from_api
    assert [type(e["timestamp"]) for e in from_backend] == [dt.datetime] * len(from_backend)
    assert all(e["timestamp"].utcoffset() == dt.timedelta(0) for e in from_backend)


def test_the_history_of_an_unknown_execution_raises_awss_error(engine: LocalEngine) -> None:
    unknown = (
        f"arn:aws:states:{engine.fleet.region}:{engine.fleet.account}"
        ":execution:certrelay-CertificateLifecycle:nobody-started-this"
    )

    with pytest.raises(ClientError) as raised:
        engine.history(unknown)

    assert raised.value.response["Error"]["Code"] == "ExecutionDoesNotExist"


def test_the_deploy_the_seeding_and_the_servers_share_the_engines_client_per_service(
    engine: LocalEngine,
) -> None:
    s3 = engine.client("s3")

    assert engine.client("s3") is s3
    assert engine.servers.client("s3", engine.fleet.region) is s3
    assert engine.client("s3", "eu-west-1") is not s3  # one per service and Region
    assert engine.client("s3", "eu-west-1").meta.region_name == "eu-west-1"
    assert s3.list_buckets()["Buckets"]  # the deploy's buckets, seen through the shared client
