"""`certrelay demo`: the newcomer's story, told by the real stack on the embedded AWS."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from certrelay.local import render
from certrelay.local.engine import ROOT, Execution, LocalEngine
from certrelay.local.report import report

EVENTS = ROOT / "events"


@dataclass(frozen=True)
class Scene:
    title: str
    event_file: str
    certificate: str
    detail: dict[str, Any] | None = None  # fields changed after re-stamping
    show_history: bool = False


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
        "web-private was renewed by ACM: its profile has targets",
        "available.json",
        "web-private",
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
)


def run_demo(*, as_json: bool = False) -> int:
    started = time.monotonic()
    with LocalEngine() as engine:
        ready = time.monotonic()
        if not as_json:
            print(
                f"certrelay demo: template.yaml deployed on an embedded AWS in "
                f"{ready - started:.2f} s ({len(engine.certificates)} certificates in the fleet)\n"
            )
        executions: list[Execution] = []
        seen = 0
        for number, scene in enumerate(STORY, start=1):
            event = json.loads((EVENTS / scene.event_file).read_text(encoding="utf-8"))
            event = engine.certificate_event(event, scene.certificate)
            event["detail"].update(scene.detail or {})
            result = engine.send(event)
            executions.extend(result.executions)
            outbox = engine.notifications()
            if not as_json:
                _tell(number, scene, result.executions, outbox[seen:])
            seen = len(outbox)
        finished = time.monotonic()
        if as_json:
            print(json.dumps(report(engine, executions), indent=2, default=str))
            return 0
        print(
            f"Done: {len(executions)} executions, {seen} emails, in "
            f"{finished - ready:.2f} s after start-up ({finished - started:.2f} s in all)."
        )
        print("Try one event yourself: certrelay local run events/expired.json --cert public-site")
    return 0


def _tell(number: int, scene: Scene, executions: list[Execution], emails: list[Any]) -> None:
    print(f"── {number}. {scene.title}")
    print(f"   event: events/{scene.event_file} as ACM would send it for {scene.certificate}")
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
        if scene.show_history:
            print("\n   Execution history (as the Step Functions console lists it):")
            print(render.history_table(execution))
    print(f"   {len(emails)} email(s)" + (":" if emails else ""))
    for message in emails:
        print(render.email(message))
    print()
