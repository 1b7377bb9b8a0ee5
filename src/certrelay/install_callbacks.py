"""Send Install Command waits for SSM's answer, not by polling: a task token kept in DynamoDB.

"Send Install Command" is a `lambda:invoke.waitForTaskToken` task. The distribute function
sends the install command, stores the task token keyed by the command id (and a second item
keyed by execution and target, so a timed-out task can find its command to cancel it), then
checks the command once: an install that finished before the token was stored (every host
unreachable, say) would otherwise never be answered. SSM's "EC2 Command Status-change
Notification" on EventBridge invokes the callback function, which reads the invocations,
claims the token with a conditional delete (so exactly one of the two answers the task) and
calls SendTaskSuccess with the target's fixed-shape result. The token is never returned,
logged or put in a state's output; its items expire by TTL if nothing claims them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from certrelay.distribution import (
    InstallSettings,
    Resolved,
    check_install,
    command_outcome,
    result,
    send_install,
)
from certrelay.errors import ConfigurationError

if TYPE_CHECKING:
    from certrelay.accounts import Sessions

# The Send Install Command task's TimeoutSeconds; the items outlive it a little.
INSTALL_DEADLINE_SECONDS = 1500
_ITEM_LIFETIME = timedelta(seconds=INSTALL_DEADLINE_SECONDS + 3600)
_GONE = {"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"}


@dataclass(frozen=True)
class CallbackSettings:
    """The token table, the stack's bundle bucket and document, the callback function."""

    table: str
    bucket: str
    document: str
    callback_function: str
    profiles_file: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CallbackSettings:
        names = ("INSTALL_TOKEN_TABLE", "BUNDLE_BUCKET", "INSTALL_DOCUMENT", "INSTALL_CALLBACK")
        values = [environ.get(name, "").strip() for name in names]
        missing = [name for name, value in zip(names, values, strict=True) if not value]
        if missing:
            raise ConfigurationError(f"{', '.join(missing)} not set")
        table, bucket, document, callback = values
        return cls(table, bucket, document, callback, environ.get("PROFILES_FILE") or None)


def _command_key(command_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"command#{command_id}"}}


def _run_key(execution: str, target_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"run#{execution}#{target_id}"}}


def store_token(
    ddb: Any,
    table: str,
    *,
    command_id: str,
    token: str,
    execution: str,
    target_id: str,
    instances: list[str],
    now: datetime,
) -> None:
    """Keep the task token until SSM answers (or the items expire)."""
    expires = str(int((now + _ITEM_LIFETIME).timestamp()))
    ddb.put_item(
        TableName=table,
        Item={
            **_command_key(command_id),
            "token": {"S": token},
            "execution": {"S": execution},
            "target": {"S": target_id},
            "instances": {"L": [{"S": i} for i in instances]},
            "expires_at": {"N": expires},
        },
    )
    ddb.put_item(
        TableName=table,
        Item={
            **_run_key(execution, target_id),
            "command_id": {"S": command_id},
            "expires_at": {"N": expires},
        },
    )


def start(
    clients: Mapping[str, Any],
    settings: CallbackSettings,
    resolved: Resolved,
    *,
    token: str,
    execution: str,
    now: datetime,
    origin: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Send the install, keep the token, and check once whether SSM already finished.

    `origin` ({account, region}) names a hub member's account where the command runs; the
    hand-over to the callback carries it, as SSM's own status-change event does."""
    ddb, ssm = clients["dynamodb"], clients["ssm"]
    sent = send_install(
        ssm,
        resolved.bundle,
        resolved.spec,
        name=resolved.name,
        settings=InstallSettings(settings.document),
    )
    command_id, instances = str(sent["command_id"]), list(sent["instances"])
    store_token(
        ddb,
        settings.table,
        command_id=command_id,
        token=token,
        execution=execution,
        target_id=resolved.target_id,
        instances=instances,
        now=now,
    )
    finished = bool(check_install(ssm, command_id, instances)["done"])
    if finished:  # SSM's event may have come before the token was kept: hand over now
        clients["lambda"].invoke(
            FunctionName=settings.callback_function,
            InvocationType="Event",
            Payload=json.dumps({**(origin or {}), "detail": {"command-id": command_id}}).encode(),
        )
    return {"command_id": command_id, "instances": len(instances), "finished": finished}


def complete(ddb: Any, ssm: Any, sfn: Any, table: str, command_id: str) -> dict[str, Any]:
    """Answer the waiting task of `command_id` once its command has finished.

    Nothing is stored yet (the event beat the sender, which checks once itself), the command
    is not finished, or another caller claimed the token first: nothing to do.
    """
    stored = ddb.get_item(TableName=table, Key=_command_key(command_id), ConsistentRead=True)
    item = stored.get("Item")
    if item is None:
        return {"command_id": command_id, "answered": False, "why": "no waiting task"}
    instances = [value["S"] for value in item.get("instances", {}).get("L", [])]
    report = check_install(ssm, command_id, instances)
    if not report["done"]:
        return {"command_id": command_id, "answered": False, "why": "still running"}
    try:  # the claim: whoever deletes the item answers the task
        claimed = ddb.delete_item(
            TableName=table,
            Key=_command_key(command_id),
            ConditionExpression="attribute_exists(pk)",
            ReturnValues="ALL_OLD",
        )["Attributes"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return {"command_id": command_id, "answered": False, "why": "answered already"}
        raise
    target_id = claimed["target"]["S"]
    ddb.delete_item(TableName=table, Key=_run_key(claimed["execution"]["S"], target_id))
    status, detail = command_outcome(report)
    answer = result(target_id, "server", status, detail)
    try:
        sfn.send_task_success(taskToken=claimed["token"]["S"], output=json.dumps(answer))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in _GONE:
            raise
        return {"command_id": command_id, "answered": False, "why": "the task is gone"}
    return {"command_id": command_id, "answered": True, "status": status}


def cancel(ddb: Any, ssm: Any, table: str, *, execution: str, target_id: str) -> dict[str, Any]:
    """The task's deadline passed: cancel its command (the script rolls back on SIGTERM)."""
    stored = ddb.get_item(TableName=table, Key=_run_key(execution, target_id), ConsistentRead=True)
    item = stored.get("Item")
    if item is None:
        return {"status": "NOTHING_TO_CANCEL"}
    command_id = item["command_id"]["S"]
    try:
        ssm.cancel_command(CommandId=command_id)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"InvalidCommandId"}:
            raise
    ddb.delete_item(TableName=table, Key=_command_key(command_id))
    ddb.delete_item(TableName=table, Key=_run_key(execution, target_id))
    return {"command_id": command_id, "status": "CANCELLED"}


def timed_out(target_id: str, kind: str) -> dict[str, Any]:
    """Cancel Install's result for the Map: the target, reported as timed out."""
    minutes = INSTALL_DEADLINE_SECONDS // 60
    return result(target_id, kind, "TIMED_OUT", f"no answer within {minutes} minutes; cancelled")


def command_of(event: Mapping[str, Any]) -> str:
    """The command id of SSM's status-change event (or of the sender's own hand-over)."""
    detail = event.get("detail")
    command_id = detail.get("command-id") if isinstance(detail, Mapping) else None
    if not isinstance(command_id, str) or not command_id:
        raise ValueError("the event names no command-id")
    return command_id


def member_ssm(event: Mapping[str, Any], sessions: Sessions | None) -> Any:
    """A hub's SSM client for the member account and Region SSM's event (or the hand-over)
    comes from, through the member's install role; None at home and in single mode."""
    account, region = event.get("account"), event.get("region")
    if sessions is None or not isinstance(account, str) or not isinstance(region, str):
        return None
    if sessions.is_home(account, region):
        return None
    return sessions.client("ssm", account=account, region=region, role="install")
