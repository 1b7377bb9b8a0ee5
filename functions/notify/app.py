"""Notify function: how a renewal ended, to its people (ROUTES) and to its distribution record."""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from datetime import UTC, datetime
    from functools import cache
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.clients import client
    from certrelay.routing import route
    from certrelay.tasks import notify

    logger = Logger()
    _client = cache(client)  # one client per service, made at init by _dependencies()
    ROUTES = {  # the state's name (the payload's `state`, from $$.State.Name) → its code
        "Report Distribution": notify.report_distribution,
        "Record Distribution": notify.record_distribution,
        "Notify Export Failure": notify.export_failure,
        "Notify Rejection": notify.rejection,
        "Notify Expiry": notify.expiry,
    }


@coldstart.once
def _dependencies() -> list[Any]:  # at init: every client it uses (kept by _client)
    return [_client(service) for service in notify.SERVICES]


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task, now = route(ROUTES, event), datetime.now(UTC)
    logger.append_keys(state=event["state"])
    return task(event, notify.Telling.from_env(os.environ, _client, logger, now))
