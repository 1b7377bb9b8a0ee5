"""`certrelay demo --org`: a hub and two member accounts, in two Regions, on the embedded AWS.

The hub (111111111111, us-east-1) runs template.yaml in organisation mode; the members
(222222222222, 333333333333) run member.yaml in us-east-1 and eu-west-1. ACM events start in
the members' own accounts and reach the hub through their forwarding rules. The story ends well
(exit 0) only when a member's renewed private certificate is approved, exported and installed
on a server in that member account, the server serving it (checked over TLS), and an event
from 999999999999, outside the organisation, is refused and reported with nothing exported.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from moto.securityhub.models import securityhub_backends
from moto.ssm.models import ssm_backends

from certrelay.cli import render
from certrelay.cli.demo import EVENTS, SCRIPTED_SPEED, TIMEOUT_SPEED
from certrelay.cli.kept_runs import keep
from certrelay.cli.report import distributions, report
from certrelay.local.engine import LocalEngine
from certrelay.local.human import send_and_decide
from certrelay.local.org import LocalOrganization
from certrelay.local.results import Execution


@dataclass(frozen=True)
class OrgScene:
    title: str
    event_file: str
    certificate: str
    renew: bool = False
    role: str = ""  # "renewal": must end distributed; "outsider": must be refused


ORG_STORY = (
    OrgScene(
        "payments-private (PRIVATE, member 222222222222, eu-west-1) was renewed by ACM: the "
        "member's rule forwards the event to the hub's bus; the hub reads it through the "
        "member's read role, an approver says yes, the hub exports it through the export role "
        "and installs it on pay-1, a server in that member account, through the member's own "
        "install document",
        "available.json",
        "payments-private",
        renew=True,
        role="renewal",
    ),
    OrgScene(
        "analytics-private (PRIVATE, member 333333333333, us-east-1), 45 days left, no profile",
        "approaching-expiration.json",
        "analytics-private",
    ),
    OrgScene(
        "outsider-private lives in 999999999999, outside the organisation, whose own rule sends "
        "its ACM events to the hub's bus: refused and reported, nothing read or exported",
        "available.json",
        "outsider-private",
        renew=True,
        role="outsider",
    ),
)


def run_org_demo(*, as_json: bool = False, decision: str | None = None) -> int:
    decision = decision or "approve"
    speed = TIMEOUT_SPEED if decision == "timeout" else SCRIPTED_SPEED
    organization = LocalOrganization()
    started = time.monotonic()
    with LocalEngine(organization=organization, clock_speed=speed) as engine:
        ready = time.monotonic()
        if not as_json:
            print(_layout(engine, ready - started))
        executions: list[Execution] = []
        outcomes: dict[str, bool] = {}
        for number, scene in enumerate(ORG_STORY, start=1):
            if scene.renew:
                engine.renew(scene.certificate)
            event = json.loads((EVENTS / scene.event_file).read_text(encoding="utf-8"))
            event = engine.certificate_event(event, scene.certificate)
            if not as_json:
                print(f"── {number}. {scene.title}")
                print(
                    f"   event: events/{scene.event_file} from {event['account']} "
                    f"({event['region']}) for {scene.certificate}"
                )
            result = send_and_decide(
                engine,
                event,
                decision,
                reason="Renewal checked against the change calendar (certrelay demo --org).",
                wait_seconds=2 * 86400 / speed + 60,
            )
            executions.extend(result.executions)
            if scene.role == "renewal":
                outcomes["member renewal distributed"] = bool(result.executions) and all(
                    _distributed(engine, e) for e in result.executions
                )
            elif scene.role == "outsider":
                outcomes["non-member event refused"] = bool(result.executions) and all(
                    _refused(e) for e in result.executions
                )
            if not as_json:
                _tell(engine, result.executions)
        ok = len(outcomes) == 2 and all(outcomes.values())
        if unkept := keep(engine.executions):  # for `certrelay history` after the demo
            print(f"certrelay: {unkept}", file=sys.stderr)
        if as_json:
            print(json.dumps(org_report(engine, executions, outcomes), indent=2, default=str))
        else:
            for what, held in outcomes.items():
                print(f"{'✓' if held else '✗'} {what}")
            print(f"\nDone: {len(executions)} executions in {time.monotonic() - ready:.2f} s.")
    return 0 if ok else 1


def org_report(
    engine: LocalEngine, executions: list[Execution], outcomes: dict[str, bool]
) -> dict[str, Any]:
    """DESIGN.md §9's object, each execution with the `account` and `region` of its event,
    and what organisation mode adds: the accounts, the member stacks, the servers' answers."""
    body = report(engine, executions)
    for summary, execution in zip(body["executions"], executions, strict=True):
        event = execution_event(execution)
        summary["account"] = event.get("account")
        summary["region"] = event.get("region")
        summary["error"] = execution.error
    organization = engine.organization or LocalOrganization()
    body["organization"] = {
        "hub": {"account": engine.fleet.account, "region": engine.fleet.region},
        "members": list(organization.members),
        "regions": list(organization.regions),
        "member_stacks": [
            {"account": account, "region": region, "stack": stack.name}
            for (account, region), stack in engine.members.stacks.items()
        ],
        "installs": [
            {"account": account, "region": region, "document": document, "instance": instance}
            for account, region, document, instance in engine.servers.commands
        ],
        "findings": _findings_everywhere(engine, organization),
        "outcomes": outcomes,
    }
    return body


def _findings_everywhere(
    engine: LocalEngine, organization: LocalOrganization
) -> list[dict[str, Any]]:
    """Security Hub findings in every account and Region of the organisation (a finding lives
    in its certificate's own account), each with where it is."""
    found = []
    for account in (engine.fleet.account, *organization.members):
        for region in organization.regions:
            for finding in securityhub_backends[account][region].findings:
                shown = finding.as_dict()
                found.append(
                    {
                        "account": account,
                        "region": region,
                        "id": shown["Id"],
                        "severity": shown.get("Severity", {}).get("Label"),
                        "status": shown.get("RecordState"),
                    }
                )
    return found


def execution_event(execution: Execution) -> dict[str, Any]:
    """The event an execution started on (its ExecutionStarted input)."""
    for event in execution.history:
        details = event.get("executionStartedEventDetails")
        if details:
            loaded = json.loads(details.get("input") or "{}")
            return loaded if isinstance(loaded, dict) else {}
    return {}


def _distributed(engine: LocalEngine, execution: Execution) -> bool:
    """Renewal Distributed, every target done, and each member server serving the renewed
    certificate, installed by a command sent in that server's own account and Region with
    the install document that account's member stack created."""
    results = distributions(execution)
    if execution.status != "SUCCEEDED" or "Renewal Distributed" not in execution.states:
        return False
    if not results or any(r["status"] != "DISTRIBUTED" for r in results):
        return False
    expected = _fingerprint(execution)
    places = engine.servers.places
    installed = [c for c in engine.servers.commands if c[3] in places]
    if not installed or not expected:
        return False
    for account, region, document, instance in installed:
        if document not in ssm_backends[account][region]._documents:
            return False
        server = engine.servers.servers[instance]
        if not server.listeners or any(server.serving(p) != expected for p in server.listeners):
            return False
    return True


def _refused(execution: Execution) -> bool:
    """Refused at triage as foreign, reported, and nothing exported."""
    return (
        execution.status == "FAILED"
        and execution.error == "ForeignEvent"
        and "Report Rejected Event" in execution.states
        and "Export Certificate" not in execution.states
    )


def _fingerprint(execution: Execution) -> str:
    output = execution.output if isinstance(execution.output, dict) else {}
    bundle = output.get("bundle")
    if isinstance(bundle, dict) and bundle.get("fingerprint"):
        return str(bundle["fingerprint"])
    for event in execution.history:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "Export Certificate":
            exported = json.loads(details["output"]).get("bundle") or {}
            return str(exported.get("fingerprint", ""))
    return ""


def _layout(engine: LocalEngine, seconds: float) -> str:
    lines = [
        f"certrelay demo --org: deployed in {seconds:.2f} s on one embedded AWS",
        f"   hub      {engine.fleet.account}  {engine.fleet.region:<10} stack certrelay "
        "(template.yaml, OrganizationMode=hub)",
    ]
    for (account, region), stack in engine.members.stacks.items():
        lines.append(f"   member   {account}  {region:<10} stack {stack.name} (member.yaml)")
    for account, region in engine.members.forwarders:
        lines.append(f"   outside  {account}  {region:<10} its own rule to the hub's bus")
    lines.append(f"   events reach the hub on {engine.members.hub_bus_arn}")
    return "\n".join(lines) + "\n"


def _tell(engine: LocalEngine, executions: list[Execution]) -> None:
    if not executions:
        print("   nothing reached the hub's rule: no execution\n")
        return
    for execution in executions:
        print(f"   {render.path(execution)}")
        if execution.error:
            print(f"   error: {execution.error}: {execution.cause}")
        expected = _fingerprint(execution)
        results = distributions(execution)
        for result in results:
            print(f"   {result['status']:<12} {result['target']}")
        for account, region, document, instance in engine.servers.commands if results else []:
            server = engine.servers.servers[instance]
            for port in server.listeners:
                served = server.serving(port) or ""
                mark = (
                    "✓ the renewed certificate" if served == expected else "✗ not the renewed one"
                )
                print(
                    f"   {server.name} ({instance}, {account} {region}, via {document}) "
                    f"serves {served[:16]}… {mark}"
                )
    print()
