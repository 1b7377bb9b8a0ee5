"""Approval API: GET shows the confirmation page for a link, the page's POST decides.

The routes are certrelay.approval_api's; this file holds one per container.
"""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay import approval_api
    from certrelay.approval_decisions import Dependencies

    logger = Logger()


@coldstart.once
def _dependencies() -> Dependencies:
    return approval_api.dependencies(os.environ)


api = approval_api.ApprovalApi(lambda: _dependencies(), logger)  # looked up per request


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.resolve(event, context)
