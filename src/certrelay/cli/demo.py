"""`certrelay demo`: the newcomer's story, told by the real stack on the embedded AWS."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from certrelay.cli import render
from certrelay.cli.kept_runs import keep
from certrelay.cli.report import distributions, report
from certrelay.local.engine import ROOT, LocalEngine
from certrelay.local.human import send_and_decide
from certrelay.local.results import Execution

EVENTS = ROOT / "events"


@dataclass(frozen=True)
class Scene:
    title: str
    event_file: str
    certificate: str
    detail: dict[str, Any] | None = None  # fields changed after re-stamping
    show_history: bool = False
    renew: bool = False  # ACM renews the certificate first (managed renewal)


STORY = (
    Scene(
        "legacy-imported (IMPORTED, 15 days left): ACM cannot renew it, so its owners must",
        "approaching-expiration.json",
        "legacy-imported",
        show_history=True,
    ),
    Scene(
        "The same event again: EventBridge delivers at least once",
        "approaching-expiration.json",
        "legacy-imported",
    ),
    Scene(
        "public-site (ACM-issued, in use, 7 days left): ACM renews it; the owners are informed",
        "approaching-expiration.json",
        "public-site",
    ),
    Scene(
        "expired-imported expired two days ago while in use",
        "expired.json",
        "expired-imported",
    ),
    Scene(
        "orphan (PRIVATE, 45 days) has no owner tag and no profile",
        "approaching-expiration.json",
        "orphan",
    ),
    Scene(
        "public-site on day 31: not a threshold day",
        "approaching-expiration.json",
        "public-site",
        detail={"DaysToExpiry": 31},
    ),
    Scene(
        "web-private was renewed by ACM: its profile has targets, so an approver must say yes",
        "available.json",
        "web-private",
        show_history=True,
        renew=True,
    ),
    Scene(
        "api-private was renewed; its profile says approval: unless-changed and its last "
        "distribution is on record, verified, with the same names, key, CA and target: the "
        "policy approves it (LikeForLike), nobody is asked",
        "available.json",
        "api-private",
        renew=True,
    ),
    Scene(
        "api-edge was renewed with a name its last distribution did not have "
        "(edge-eu.internal.example.com): anything new asks a person (NamesChanged)",
        "available.json",
        "api-edge",
        renew=True,
    ),
)
# How much faster than on AWS the approval waits pass: a timeout run takes seconds, a person
# at a browser gets about ten minutes for the 24-hour window.
TIMEOUT_SPEED = 86400 / 2
INTERACTIVE_SPEED = 86400 / 600
SCRIPTED_SPEED = 200.0  # the install poll's 5-second Wait takes 25 ms; a day, 7 minutes


def run_demo(*, as_json: bool = False, decision: str | None = None) -> int:
    interactive = decision is None and not as_json and sys.stdin.isatty()
    if decision is None and not interactive:
        decision = "approve"
    speed = {"timeout": TIMEOUT_SPEED}.get(
        decision or "", INTERACTIVE_SPEED if interactive else SCRIPTED_SPEED
    )
    started = time.monotonic()
    with LocalEngine(clock_speed=speed) as engine:
        ready = time.monotonic()
        outbox = _Outbox(engine, quiet=as_json)
        if not as_json:
            print(
                f"certrelay demo: template.yaml deployed on an embedded AWS in "
                f"{ready - started:.2f} s ({len(engine.certificates)} certificates in the fleet)\n"
            )
        executions: list[Execution] = []
        for number, scene in enumerate(STORY, start=1):
            if scene.renew:
                engine.renew(scene.certificate)
            event = json.loads((EVENTS / scene.event_file).read_text(encoding="utf-8"))
            event = engine.certificate_event(event, scene.certificate)
            event["detail"].update(scene.detail or {})
            if not as_json:
                print(f"── {number}. {scene.title}")
                print(
                    f"   event: events/{scene.event_file} as ACM sends it for {scene.certificate}"
                )
            result = send_and_decide(
                engine,
                event,
                decision,
                reason="Renewal checked against the change calendar (certrelay demo).",
                on_waiting=lambda links: outbox.waiting(links, decision, interactive),
                # both local windows (request, escalation) and a minute for the rest
                wait_seconds=2 * 86400 / speed + 60,
            )
            executions.extend(result.executions)
            if not as_json:
                _tell(scene, result.executions, outbox)
        if unkept := keep(engine.executions):  # for `certrelay history` after the demo
            print(f"certrelay: {unkept}", file=sys.stderr)
        finished = time.monotonic()
        if as_json:
            print(json.dumps(report(engine, executions), indent=2, default=str))
            return 0
        _where_it_landed(engine, executions)
        print(render.operations(engine.findings(), engine.events_out(), engine.metrics()))
        print()
        print(
            f"Done: {len(executions)} executions, {outbox.shown} emails, in "
            f"{finished - ready:.2f} s after start-up ({finished - started:.2f} s in all)."
        )
        print("Try one event yourself: certrelay local run events/expired.json --cert public-site")
    return 0


class _Outbox:
    """Prints each email once, as it arrives."""

    def __init__(self, engine: LocalEngine, *, quiet: bool) -> None:
        self.engine = engine
        self.quiet = quiet
        self.shown = 0

    def flush(self) -> None:
        messages = self.engine.notifications()
        if not self.quiet:
            for message in messages[self.shown :]:
                print(render.email(message))
        self.shown = len(messages)

    def waiting(self, links: list[str], decision: str | None, interactive: bool) -> None:
        if self.quiet:
            return
        print(
            "   The execution waits in Request Approval. The owners' notice and the approval email:"
        )
        self.flush()
        if interactive:
            print(
                f"\n   Open {links[0]} in a browser and press Approve or Reject.\n"
                "   (Nothing happens on opening the page; the local approval window is about "
                "ten minutes.)\n"
            )
        elif decision == "timeout":
            print("   Nobody clicks: the approval window runs out (seconds here, a day on AWS).\n")
        else:
            button = (decision or "approve").capitalize()
            print(f"   The approver opens the link and presses {button}.\n")


def _tell(scene: Scene, executions: list[Execution], outbox: _Outbox) -> None:
    if not executions:
        print("   the rule filtered it out: no execution, no email\n")
        return
    for execution in executions:
        decision = execution.output if isinstance(execution.output, dict) else {}
        print(f"   {render.path(execution)}")
        if decision.get("reason"):
            print(
                f"   decision: {decision.get('route')} · {', '.join(decision.get('reasons', []))}"
            )
        plan = decision.get("approval")
        if isinstance(plan, dict):
            print(
                f"   approval policy: {plan.get('mode')} → approved by "
                f"{'the policy' if plan.get('approver') == 'policy' else 'a person'} · "
                f"{', '.join(plan.get('reasons') or [])}"
            )
        approval = decision.get("approval_decision")
        if isinstance(approval, dict):
            print(
                f"   approval: {approval.get('decision')} by {approval.get('approver')} at "
                f"{approval.get('decided_at')}: {approval.get('reason')}"
            )
        if execution.error:
            print(f"   error: {execution.error}: {execution.cause}")
        if scene.show_history:
            print("\n   Execution history (as the Step Functions console lists it):")
            print(render.history_table(execution))
    before = outbox.shown
    outbox.flush()
    print(f"   {outbox.shown - before} more email(s)\n" if outbox.shown > before else "")


def _where_it_landed(engine: LocalEngine, executions: list[Execution]) -> None:
    """Each target of the distributed certificate: the files in S3, what each server serves."""
    for execution in executions:
        results = distributions(execution)
        if not results:
            continue
        bundle = (execution.output or {}).get("bundle") or _bundle_of(execution)
        expected = str(bundle.get("fingerprint", ""))
        print(f"Where the renewed certificate is now (SHA-256 {expected[:16]}…):")
        for result in results:
            print(f"   {result['status']:<12} {result['target']}")
        if not any(str(r["target"]).startswith("server") for r in results):
            print()
            continue
        for server in engine.servers.servers.values():
            for port, listener in server.listeners.items():
                served = server.serving(port) or ""
                mark = (
                    "✓ the renewed certificate" if served == expected else "✗ NOT the renewed one"
                )
                print(
                    f"   {server.name} ({server.instance}) serves {served[:16]}… on :{port} "
                    f"(local :{listener.port}) {mark}"
                )
        print()


def _bundle_of(execution: Execution) -> dict[str, Any]:
    for event in execution.history:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "Export Certificate":
            return dict(json.loads(details["output"]).get("bundle") or {})
    return {}
