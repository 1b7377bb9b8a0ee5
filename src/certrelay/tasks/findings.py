"""Raise Finding, Raise Distribution Finding, Raise Export Finding, Resolve Finding and Close
Findings: a certificate's Security Hub findings, opened and closed, each announced on the bus.

A hub imports a member certificate's findings into the member's own account and Region through
the member's read role (Security Hub takes a finding with the default product ARN only from the
account it is about); a delegated administrator sees them through its member relationship."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from certrelay import findings
from certrelay.accounts import Sessions, clients_for, kept_client, kept_sessions
from certrelay.announcements import announce, build_models, common_fields
from certrelay.arns import CERTIFICATE_ARN
from certrelay.errors import ConfigurationError

SERVICES = ("securityhub", "events")  # every client the states use


@dataclass(frozen=True)
class Reporting:
    """What the findings function acts with in one invocation."""

    client: Callable[[str], Any]  # boto3 client by service name, in the function's region
    account: str
    region: str
    partition: str
    log: Logger
    now: datetime
    sessions: Sessions | None = None  # a hub's, for its members' certificates

    def security_hub(self, certificate_arn: str) -> tuple[Any, str, str]:
        """Security Hub, account and Region for the certificate: the function's own at home,
        else the member's own, through its read role."""
        at = clients_for(certificate_arn, "read", sessions=self.sessions, own=self.client)
        parts = CERTIFICATE_ARN.fullmatch(certificate_arn)
        if at is self.client or parts is None:
            return self.client("securityhub"), self.account, self.region
        return at("securityhub"), parts["account"], parts["region"]

    @classmethod
    def invoked(
        cls,
        function_arn: str,
        environ: Mapping[str, str],
        client: Callable[..., Any],  # boto3 client by service and region=
        log: Logger,
        now: datetime,
        sessions: Sessions | None = None,
    ) -> Reporting:
        """For one invocation of the function `function_arn`: its account, region, partition;
        `sessions`, a hub's, reach its members' certificates."""
        account, region, partition = scope(function_arn, environ)
        own = partial(client, region=region)
        return cls(own, account, region, partition, log, now, sessions)


def setup(environ: Mapping[str, str]) -> list[Any]:
    """At init: a hub's sessions, every client the states use (kept per service, in the
    function's Region) and the events' models every call announces (built now, not at first use)."""
    build_models("finding-raised", "finding-resolved")
    region = environ["AWS_REGION"]
    return [kept_sessions(environ), *(kept_client(service, region) for service in SERVICES)]


def scope(function_arn: str, environ: Mapping[str, str]) -> tuple[str, str, str]:
    """Account, region and partition of the invoked function (region from AWS_REGION else)."""
    parts = function_arn.split(":")
    account = parts[4] if len(parts) >= 7 and parts[2] == "lambda" else ""
    region = (parts[3] if account else "") or environ.get("AWS_REGION", "")
    if not account.isdigit() or not region:
        raise ConfigurationError(f"cannot tell account and region from {function_arn!r}")
    return account, region, parts[1] or "aws"


def raise_finding(event: dict[str, Any], run: Reporting) -> dict[str, Any]:
    """Raise a finding: the payload's `problem` (set by the state) or the decision's."""
    decision, log = _decision(event), _log_fields(event)
    securityhub, account, region = run.security_hub(log["certificate_arn"])
    raised = findings.raise_finding(
        securityhub,
        decision=decision,
        problem=log["problem"],
        now=run.now,
        account=account,
        region=region,
        partition=run.partition,
        detail=str(event.get("detail") or ""),
    )
    run.log.info("finding raised", extra={**log, "severity": raised["severity"]})
    fields = {"outcome": "finding-raised", "problem": log["problem"]}
    _announce(run, event, {**fields, "severity": raised["severity"], "finding_ids": [raised["id"]]})
    return {"action": "raise", "ids": [raised["id"]], "severity": raised["severity"]}


def resolve_findings(event: dict[str, Any], run: Reporting) -> dict[str, Any]:
    """Archive the certificate's open findings: the payload's `problem` only, or every one."""
    log = _log_fields(event)
    ids = findings.resolve_findings(
        run.security_hub(log["certificate_arn"])[0],
        certificate_arn=log["certificate_arn"],
        now=run.now,
        problems=[log["problem"]] if event.get("problem") else findings.ALL_PROBLEMS,
    )
    run.log.info("findings resolved", extra={**log, "archived": len(ids)})
    if ids:
        _announce(run, event, {"outcome": "finding-resolved", "finding_ids": ids})
    return {"action": "resolve", "ids": ids}


def _decision(event: Mapping[str, Any]) -> dict[str, Any]:
    return dict(event.get("decision") or {})


def _log_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    decision = _decision(event)
    problem = event.get("problem") or (decision.get("finding") or {}).get("problem") or ""
    arn = (decision.get("certificate") or {}).get("arn") or ""
    return {
        "certificate_arn": str(arn),
        "problem": str(problem),
        "execution": event.get("execution"),
    }


def _announce(run: Reporting, event: Mapping[str, Any], fields: dict[str, Any]) -> None:
    """certrelay.finding-raised / -resolved; Security Hub has it, so a bus error is only logged."""
    detail = {**common_fields(_decision(event), str(event.get("execution", ""))), **fields}
    try:
        announce(run.client("events"), detail)
    except Exception as error:  # the finding itself stands; the event is a courtesy
        run.log.warning("finding event not put", extra={"error": str(error)})
