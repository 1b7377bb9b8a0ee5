"""The approval side of template.yaml: the task-token key, the append-only audit, SSO routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from certrelay.local.nested import whole_stack

ROOT = Path(__file__).resolve().parents[2]


def _translated(**parameters: str) -> dict[str, Any]:
    return whole_stack(
        ROOT / "template.yaml",
        {"FallbackOwnerEmail": "security@example.com", **parameters},
        "us-east-1",
        inline_definitions=False,
    )["Resources"]


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return _translated()


def _role_of(principal: Any) -> str:
    return principal["AWS"]["Fn::GetAtt"][0]


def test_the_task_token_key_rotates_and_only_request_approval_encrypts_only_approval_decrypts(
    resources: dict[str, Any],
) -> None:
    key = resources["ApprovalKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    uses = {
        s["Sid"]: (_role_of(s["Principal"]), s["Action"])
        for s in statements
        if "Fn::GetAtt" in str(s["Principal"])
    }
    assert sorted(uses.values()) == [
        ("ApprovalFunctionRole", "kms:Decrypt"),
        ("RequestApprovalFunctionRole", "kms:Encrypt"),
    ]
    for statement in statements:
        assert statement["Principal"] != "*"
        assert statement["Principal"].get("AWS") != "*"
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if "Fn::GetAtt" not in str(statement["Principal"]):  # the account administers only
            assert not {"kms:*", "kms:Decrypt", "kms:Encrypt"} & set(actions)
            assert not any(a.startswith(("kms:GenerateDataKey", "kms:ReEncrypt")) for a in actions)
        else:
            condition = statement["Condition"]["StringLike"]
            assert condition == {"kms:EncryptionContext:certrelay:record": "request#*"}


def test_both_approval_functions_name_the_token_key(resources: dict[str, Any]) -> None:
    for name in ("RequestApprovalFunction", "ApprovalFunction"):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert "APPROVAL_TOKEN_KEY_ARN" in variables, name
    alias = resources["ApprovalKeyAlias"]["Properties"]
    assert alias["TargetKeyId"] == {"Ref": "ApprovalKey"}


def test_the_approval_role_may_not_update_or_delete_audit_items(resources: dict[str, Any]) -> None:
    statements = [
        statement
        for policy in resources["ApprovalFunctionRole"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert set(deny["Action"]) == {"dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    assert deny["Condition"] == {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["audit#*"]}}


def test_sso_adds_the_callback_route_and_no_route_needs_a_bearer_token() -> None:
    plain = _translated()
    sso = _translated(ApprovalSsoIssuer="https://idp.example.com", ApprovalSsoAudience="c")
    assert "ApprovalSsoCallbackRoute" not in _present(plain)
    assert sso["ApprovalSsoCallbackRoute"]["Properties"]["RouteKey"] == "GET /callback"
    for resources in (plain, sso):
        for resource in resources.values():
            assert resource["Type"] != "AWS::ApiGatewayV2::Authorizer"
            if resource["Type"] == "AWS::ApiGatewayV2::Route":
                assert resource["Properties"].get("AuthorizationType", "NONE") == "NONE"


def _present(resources: dict[str, Any]) -> set[str]:
    """The resources a deployment creates (the condition of SSO-only ones is false here)."""
    return {name for name, r in resources.items() if r.get("Condition") != "SsoEnabled"}
