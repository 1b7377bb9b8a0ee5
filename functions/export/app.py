"""Export Certificate: ACM's certificate out as an encrypted bundle in S3; references only back."""

from __future__ import annotations

from certrelay import coldstart

with coldstart.init():  # no cyclic collections while the long-lived modules are made
    import os
    from datetime import UTC, datetime
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from certrelay.tasks.export import LOGGED, Exporter

    logger = Logger()


@coldstart.once
def _dependencies() -> Exporter:
    return Exporter.from_env(os.environ)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = _dependencies().export(event, now=datetime.now(UTC))
    logger.info(
        "certificate exported" if result["created"] else "certificate already exported",
        extra={
            "execution": str(event.get("execution", "")),
            **{field: result[field] for field in LOGGED},
            "bundle_created": result["created"],
        },
    )
    return result
