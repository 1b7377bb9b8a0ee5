"""Organisation Sweep: the hub's daily sweep of every (account, Region) pair, state by state."""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from datetime import UTC, datetime
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.routing import route
    from certrelay.tasks import org_sweep

    logger = Logger()
    ROUTES = {  # the state's name (the payload's `state`, from $$.State.Name) → its code
        "List Sweep Pairs": org_sweep.list_sweep_pairs,
        "Sweep Pair": org_sweep.sweep_pair,
        "Summarise Sweep": org_sweep.summarise_sweep,
    }


@coldstart.once
def _dependencies() -> org_sweep.Deployment:
    """Read once per container, at init: member credentials stay cached between invocations."""
    return org_sweep.Deployment.from_env(os.environ)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = route(ROUTES, event)
    logger.append_keys(state=event["state"])
    deployment = _dependencies()
    return task(event, org_sweep.SweepRun(deployment, logger, datetime.now(UTC)))
