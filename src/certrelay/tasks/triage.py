"""Triage Event: what the triage function acts with, and what it counts per event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certrelay.accounts import Sessions, clients_for
from certrelay.approval_policy import LastDistribution
from certrelay.clients import client
from certrelay.config import Settings
from certrelay.distribution_record import read_last
from certrelay.events import build_models
from certrelay.metrics import count, expiry_bucket
from certrelay.profiles import MaintenanceWindow, Profile, load_profiles_file
from certrelay.triage import triage


@dataclass(frozen=True)
class Triager:
    """Read once per container: settings, the deployed profiles, the ACM client, and where the
    distribution record lives (no table: no record, so unless-changed asks a person); a hub's
    sessions reach its members' certificates through their read role."""

    settings: Settings
    profiles: dict[str, Profile]
    acm: Any
    dynamodb: Any = None
    record_table: str = ""
    sessions: Sessions | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Triager:
        settings = Settings.from_env(environ)
        table = environ.get("DISTRIBUTION_RECORD_TABLE_NAME", "")
        dynamodb = client("dynamodb") if table else None
        profiles = load_profiles_file(settings.profiles_file)
        build_models()  # the event models every call parses
        MaintenanceWindow.model_rebuild()  # a distribute decision dumps its profile's window
        hub = Sessions(settings.organization) if settings.organization.is_hub else None
        return cls(settings, profiles, client("acm"), dynamodb, table, hub)

    def acm_for(self, arn: str) -> Any:
        """ACM where the certificate is: this function's client at home, a member's read role."""
        return clients_for(arn, "read", sessions=self.sessions, own=lambda _: self.acm)("acm")

    def last_distribution(self, arn: str) -> LastDistribution | None:
        """The certificate's last distribution on record, for approval: unless-changed."""
        if self.dynamodb is None or not self.record_table:
            return None
        return read_last(self.dynamodb, self.record_table, arn)

    def triage(self, event: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
        """The decision for the payload's ACM event (`event`), counted on the dashboard."""
        decision = triage(
            event.get("event", {}),
            acm_client=self.acm,
            settings=self.settings,
            profiles=self.profiles,
            execution_arn=str(event.get("execution", "")),
            now=now,
            read_last=self.last_distribution,
            acm_for=self.acm_for,
        )
        count_triaged(decision, str((event.get("event") or {}).get("source", "")))
        return decision


def count_triaged(decision: Mapping[str, Any], source: str) -> None:
    """Counted before Record Event: an ACM redelivery, or the sweep's copy of a reminder ACM
    did send, counts again; `source` tells ACM's events from the sweep's on the dashboard."""
    kind, route = decision["event_kind"], decision["route"]
    count("EventsTriaged", {"kind": kind, "route": route, "source": source})
    bucket = expiry_bucket(decision["certificate"]["days_to_expiry"])
    count("CertificatesByDaysToExpiry", {"days_to_expiry": bucket, "source": source})
