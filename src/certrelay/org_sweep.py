"""The organisation sweep (hub mode): the daily reconciliation sweep, one (account, Region) pair
at a time, fanned out by the org sweep state machine's Distributed Map.

*List Sweep Pairs* names every pair the hub covers (`Organization.pairs()`). Each child of the
map runs *Sweep Pair* on one pair: it assumes that account's read role in that Region
(`certrelay.accounts.Sessions`), lists the pair's issued certificates and puts the reminders
ACM's events missed on **that pair's own default bus**, signed by the member's role. EventBridge
therefore stamps the reminder with the member's account and Region, as it stamps ACM's own
events, and the member stack's forwarding rule carries it to the hub's bus unchanged; the hub's
origin check and Record Event gate then treat it like the ACM event it stands in for.
A pair that fails is caught inside its child and comes back as `{account, region, error}`;
*Summarise Sweep* counts the pairs swept and failed and the reminders sent, tells operations
which pairs failed, and emits one metric per outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from certrelay.certificates import TRANSIENT_ERRORS
from certrelay.errors import ServiceThrottled
from certrelay.sweep import sweep
from certrelay.text import clean

if TYPE_CHECKING:
    from certrelay.organization import Organization

SHOWN_FAILURES = 50  # failed pairs listed in the operations message (all are counted)
CAUSE_LIMIT = 300  # characters of each failure's cause kept in the summary


class MemberClients(Protocol):
    """What Sweep Pair needs of `certrelay.accounts.Sessions`."""

    def client(self, service: str, *, account: str, region: str, role: Any) -> Any: ...


def sweep_pairs(organization: Organization) -> list[dict[str, str]]:
    """The map's items: every (account, Region) pair the hub covers, hub first, as objects."""
    return [{"account": account, "region": region} for account, region in organization.pairs()]


def sweep_pair(
    sessions: MemberClients,
    *,
    account: str,
    region: str,
    now: datetime,
    thresholds: frozenset[int],
) -> dict[str, Any]:
    """Sweep one pair with its read role: list, and put the due reminders on its own bus.

    MemberRoleUnavailable and RegionNotEnabled come from `sessions` as raised; a throttled or
    unavailable AWS answer becomes the retryable ServiceThrottled. The child's Catch reports
    whatever is left after the state machine's retries.
    """
    try:
        acm = sessions.client("acm", account=account, region=region, role="read")
        events = sessions.client("events", account=account, region=region, role="read")
        report = sweep(acm, events, now=now, thresholds=thresholds)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in TRANSIENT_ERRORS or status >= 500:
            raise ServiceThrottled(
                f"{error.operation_name} in {account}/{region} failed transiently ({code})"
            ) from error
        raise
    return {"account": account, "region": region, **report.as_dict()}


@dataclass
class SweepSummary:
    """What one organisation sweep did, pair by pair, added up."""

    pairs: int = 0
    swept: int = 0
    listed: int = 0
    due: int = 0
    sent: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    incomplete: str = ""  # why the sweep itself stopped short (listing or the map run failed)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "swept": self.swept,
            "failed": self.failed,
            "listed": self.listed,
            "due": self.due,
            "sent": self.sent,
            "failures": self.failures[:SHOWN_FAILURES],
            "complete": not self.incomplete,
            "incomplete": self.incomplete,
        }


def summarise(sweep_state: Mapping[str, Any]) -> SweepSummary:
    """Add up the map's results; a pair with no result, or refused reminders, counts as failed.

    `sweep_state` is the state machine's state at *Summarise Sweep*: `pairs` (from List Sweep
    Pairs), `results` (one per pair, in order) and, when listing or the map run failed, `error`.
    """
    pairs = [p for p in sweep_state.get("pairs") or [] if isinstance(p, dict)]
    results = sweep_state.get("results")
    summary = SweepSummary(pairs=len(pairs))
    error = sweep_state.get("error")
    if isinstance(error, dict):
        summary.incomplete = _short(f"{error.get('Error', 'unknown')}: {error.get('Cause', '')}")
    if not isinstance(results, list):
        results = []
    for index, pair in enumerate(pairs):
        result = results[index] if index < len(results) else None
        _add(summary, pair, result if isinstance(result, dict) else None)
    return summary


def _add(summary: SweepSummary, pair: Mapping[str, Any], result: Mapping[str, Any] | None) -> None:
    where = {"account": str(pair.get("account", "")), "region": str(pair.get("region", ""))}
    if result is None:  # the child itself failed (moto leaves null; AWS counts it as failed)
        error = "NoResult" if not summary.incomplete else "NotSwept"
        cause = "the pair's child reported nothing"
        summary.failures.append({**where, "error": error, "cause": cause})
        return
    if "error" in result:
        cause = _short(_message(result.get("cause")))
        summary.failures.append({**where, "error": str(result["error"]), "cause": cause})
        return
    summary.listed += int(result.get("listed", 0))
    summary.due += int(result.get("due", 0))
    summary.sent += int(result.get("sent", 0))
    refused = [str(f) for f in result.get("failed") or []]
    if refused:
        cause = _short(f"{len(refused)} reminders refused by EventBridge: {'; '.join(refused[:3])}")
        summary.failures.append({**where, "error": "RemindersRefused", "cause": cause})
        return
    summary.swept += 1


def _message(cause: Any) -> str:
    """A Lambda error's message (Step Functions' Cause is its JSON error payload), else as is."""
    text = str(cause or "")
    try:
        payload = json.loads(text)
    except ValueError:
        return text
    if isinstance(payload, dict) and isinstance(payload.get("errorMessage"), str):
        return str(payload["errorMessage"])
    return text


def _short(text: str) -> str:
    text = clean(text)
    return text if len(text) <= CAUSE_LIMIT else text[: CAUSE_LIMIT - 1] + "…"


def ops_message(summary: SweepSummary) -> tuple[str, str] | None:
    """The operations topic's (subject, body) when a pair failed or the sweep stopped; else None."""
    if not summary.failures and not summary.incomplete:
        return None
    subject = f"certrelay sweep: {summary.failed} of {summary.pairs} account/Region pairs failed"
    lines = [
        f"The organisation sweep swept {summary.swept} of {summary.pairs} (account, Region) pairs "
        f"and put {summary.sent} of {summary.due} due reminders.",
    ]
    if summary.incomplete:
        subject = "certrelay sweep: the sweep did not finish"
        lines.append(f"The sweep stopped short: {summary.incomplete}")
    lines += ["", "Failed pairs (account, Region: error - cause):"]
    lines += list(_failure_lines(summary.failures[:SHOWN_FAILURES]))
    if summary.failed > SHOWN_FAILURES:
        more = summary.failed - SHOWN_FAILURES
        lines.append(f"... and {more} more (the map run lists every child).")
    lines += [
        "",
        "A pair whose read role cannot be assumed needs the member stack (member.yaml) in that "
        "account and Region, with the hub's external id; a Region not enabled needs opting in or "
        "removing from MemberRegions. The next daily sweep tries every pair again.",
    ]
    return subject[:99], "\n".join(lines)


def _failure_lines(failures: Iterable[Mapping[str, str]]) -> Iterable[str]:
    for f in failures:
        yield f"- {f['account']}, {f['region']}: {f['error']} - {f['cause']}"
