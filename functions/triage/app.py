"""Triage Event: one ACM event in, the decision the state machine routes on out."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrelay.config import Settings
from certrelay.metrics import count, expiry_bucket
from certrelay.profiles import Profile, load_profiles_file
from certrelay.triage import triage

logger = Logger()


@cache
def _dependencies() -> tuple[Settings, dict[str, Profile], Any]:
    """Read once per container: settings, the deployed profiles, the ACM client."""
    settings = Settings.from_env(os.environ)
    return settings, load_profiles_file(settings.profiles_file), boto3.client("acm")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, profiles, acm = _dependencies()
    decision = triage(
        event.get("event", {}),
        acm_client=acm,
        settings=settings,
        profiles=profiles,
        execution_arn=str(event.get("execution", "")),
        now=datetime.now(UTC),
    )
    logger.info(
        "triaged",
        extra={
            "certificate_arn": decision["certificate"]["arn"],
            "route": decision["route"],
            "reason": decision["reason"],
            "owners": len(decision["owners"]),
        },
    )
    # Counted before Record Event: an ACM redelivery, or the sweep's copy of a reminder ACM
    # did send, counts again; `source` tells ACM's events from the sweep's on the dashboard.
    source = str((event.get("event") or {}).get("source", ""))
    kind, route = decision["event_kind"], decision["route"]
    count("EventsTriaged", {"kind": kind, "route": route, "source": source})
    bucket = expiry_bucket(decision["certificate"]["days_to_expiry"])
    count("CertificatesByDaysToExpiry", {"days_to_expiry": bucket, "source": source})
    return decision
