"""List Sweep Pairs, Sweep Pair and Summarise Sweep: the organisation sweep's three Lambda
states (statemachines/org_sweep.asl.json), each a call into certrelay.org_sweep."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from certrelay import org_sweep
from certrelay.accounts import Sessions, kept_client
from certrelay.errors import ConfigurationError
from certrelay.metrics import count
from certrelay.organization import Organization
from certrelay.reminders import expiry_thresholds


@dataclass(frozen=True)
class Deployment:
    """Read once per container: the organisation, its member sessions, the reminder days."""

    organization: Organization
    sessions: Sessions
    thresholds: frozenset[int]
    ops_topic_arn: str
    client: Callable[[str], Any]  # the hub's own clients (SNS), in the hub's Region

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Deployment:
        """The hub's account and partition (STACK_ACCOUNT_ID, STACK_PARTITION: the template's
        Globals) and Region (AWS_REGION, Lambda's)."""
        where = [environ.get(n, "").strip() for n in ("STACK_ACCOUNT_ID", "AWS_REGION")]
        if not all(where):
            raise ConfigurationError("the org sweep needs STACK_ACCOUNT_ID and AWS_REGION")
        (account, region), partition = where, environ.get("STACK_PARTITION", "").strip() or "aws"
        organization = Organization.from_env(
            environ, account=account, region=region, partition=partition
        )
        return cls(
            organization,
            Sessions(organization),  # caches each role's credentials until shortly before expiry
            expiry_thresholds(environ),
            environ.get("OPS_TOPIC_ARN", ""),
            partial(kept_client, region=region),
        )


@dataclass(frozen=True)
class SweepRun:
    """What the org sweep function acts with in one invocation."""

    deployment: Deployment
    log: Logger
    now: datetime


def list_sweep_pairs(event: dict[str, Any], run: SweepRun) -> dict[str, Any]:
    """Every (account, Region) pair the hub covers: the Distributed Map's items."""
    pairs = org_sweep.sweep_pairs(run.deployment.organization)
    run.log.info("sweep pairs listed", extra={"pairs": len(pairs)})
    return {"pairs": pairs}


def sweep_pair(event: dict[str, Any], run: SweepRun) -> dict[str, Any]:
    """One pair: list its certificates with its read role; put its due reminders on its bus."""
    account, region = str(event.get("account", "")), str(event.get("region", ""))
    if not run.deployment.organization.admits(account, region):
        raise ConfigurationError(f"{account}/{region} is not a pair this hub covers")
    result = org_sweep.sweep_pair(
        run.deployment.sessions,
        account=account,
        region=region,
        now=run.now,
        thresholds=run.deployment.thresholds,
    )
    run.log.info("pair swept", extra={k: v for k, v in result.items() if k != "failed"})
    return result


def summarise_sweep(event: dict[str, Any], run: SweepRun) -> dict[str, Any]:
    """Add the pairs up, tell operations about every failed pair, count both outcomes."""
    summary = org_sweep.summarise(event.get("sweep") or {})
    message = org_sweep.ops_message(summary)
    if message is not None:
        subject, body = message
        sns, topic = run.deployment.client("sns"), run.deployment.ops_topic_arn
        sns.publish(TopicArn=topic, Subject=subject, Message=body)
    count("SweepPairs", {"outcome": "swept"}, summary.swept)
    count("SweepPairs", {"outcome": "failed"}, summary.failed)
    answer = summary.as_dict()
    run.log.info("sweep summarised", extra={k: v for k, v in answer.items() if k != "failures"})
    return answer
