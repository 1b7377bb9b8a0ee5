"""Distribute function: Find Window and the Distribute Certificate Map's item states."""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from datetime import UTC, datetime
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.clients import client
    from certrelay.routing import route
    from certrelay.tasks import distribute

    logger = Logger()
    ROUTES = {  # the state's name (the payload's `state`, from $$.State.Name) → its code
        "Find Window": distribute.find_window,
        "Copy To Bucket": distribute.copy_to_bucket,
        "Send Install Command": distribute.send_install_command,
        "Cancel Install": distribute.cancel_install,
    }


@coldstart.once
def _dependencies() -> tuple[distribute.Setup, dict[str, Any]]:  # settings, profiles, clients
    return distribute.setup(os.environ), {name: client(name) for name in distribute.SERVICES}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task, now = route(ROUTES, event), datetime.now(UTC)
    logger.append_keys(state=event["state"])
    (settings, profiles, sessions), clients = _dependencies()  # sessions: a hub's, else None
    client = clients.__getitem__  # a service not in distribute.SERVICES: KeyError
    run = distribute.Distributing(settings, profiles, sessions, client, logger, now)
    return task(event, run)
