"""Request-approval function: Request Approval and Escalate Approval, one round each.

Both wait for a task token; the approval API (functions/approval) answers it.
"""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from datetime import UTC, datetime
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.routing import route
    from certrelay.tasks import request_approval

    logger = Logger()
    ROUTES = {  # the state's name (the payload's `state`, from $$.State.Name) → its code
        "Request Approval": request_approval.request_round,
        "Escalate Approval": request_approval.escalation_round,
    }


@coldstart.once
def _dependencies() -> request_approval.Clients:
    return request_approval.Clients.from_env(os.environ)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = route(ROUTES, event)
    logger.append_keys(state=event["state"])
    run = request_approval.Asking(_dependencies(), logger, datetime.now(UTC))
    return task(event, run)
