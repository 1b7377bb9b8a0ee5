"""The local engine's functions share botocore clients: one process, the same settings.

On Lambda each function makes its own clients in its own process; the local engine runs them
all in one, and a client made for one function serves another only when nothing the client was
made from differs: service, keyword arguments, AWS_* settings. Credentials given as arguments
(a member account's clients, with handlers of their own) are never shared.
"""

from __future__ import annotations

import pytest

from certrelay import clients
from certrelay.local.lambdas import functions_share_clients


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_given_sharing_when_two_functions_ask_for_one_service_then_they_get_one_client() -> None:
    with functions_share_clients():
        first, second = clients.client("dynamodb"), clients.client("dynamodb")
        other = clients.client("sns")

    assert first is second
    assert other is not first
    assert other.meta.service_model.service_name == "sns"


def test_given_sharing_when_the_region_differs_then_each_region_has_its_own_client() -> None:
    with functions_share_clients():
        default, asked = clients.client("acm"), clients.client("acm", region_name="us-east-1")
        again = clients.client("acm", region_name="us-east-1")

    assert default.meta.region_name == "eu-west-1"
    assert asked.meta.region_name == "us-east-1"
    assert asked is again
    assert asked is not default


def test_given_sharing_when_an_aws_setting_changes_then_a_new_client_follows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with functions_share_clients():
        before = clients.client("s3")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
        after = clients.client("s3")
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "another-function")  # not a client setting
        same = clients.client("s3")

    assert before.meta.region_name == "eu-west-1"
    assert after.meta.region_name == "ap-southeast-2"
    assert same is after


def test_given_sharing_when_credentials_are_given_then_each_call_makes_its_own_client() -> None:
    keys = {"aws_access_key_id": "AKIAMEMBER", "aws_secret_access_key": "member-secret"}
    with functions_share_clients():
        first, second = clients.client("acm", **keys), clients.client("acm", **keys)

    assert first is not second
    assert first.meta.events is not second.meta.events  # handlers registered on one stay there


def test_given_sharing_ended_when_a_client_is_asked_then_it_is_made_anew() -> None:
    with functions_share_clients():
        shared = clients.client("kms")
    after = clients.client("kms")

    assert after is not shared
    assert clients.client("kms") is not after
