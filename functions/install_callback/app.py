"""Install Callback: SSM says an install command finished; answer the task that waits for it.

Invoked by the rule on SSM's status-change event for the install document (a hub's members'
too, read through their install role) and by the distribute function when the command finished
before its task token was stored. The token is read from DynamoDB and never logged.
"""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.accounts import Sessions, sessions_from_env
    from certrelay.clients import client
    from certrelay.install_callbacks import command_of, complete, member_ssm

    logger = Logger()


@coldstart.once
def _dependencies() -> tuple[Any, Any, Any, Sessions | None]:
    """At init: the DynamoDB, SSM, Step Functions clients; a hub's sessions (members' SSM)."""
    ddb, ssm, sfn = client("dynamodb"), client("ssm"), client("stepfunctions")
    return ddb, ssm, sfn, sessions_from_env(os.environ)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ddb, ssm, sfn, sessions = _dependencies()
    ssm = member_ssm(event, sessions) or ssm
    command_id = command_of(event)
    answer = complete(ddb, ssm, sfn, os.environ["INSTALL_TOKEN_TABLE"], command_id)
    logger.info("install callback", extra=answer)
    return answer
