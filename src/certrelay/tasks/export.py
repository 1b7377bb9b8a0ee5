"""Export Certificate: what the export function acts with, read once per container."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from certrelay.accounts import Sessions, clients_for, sessions_from_env
from certrelay.clients import client
from certrelay.errors import ExportCapReached
from certrelay.export import ExportSettings, export_certificate, role_arn
from certrelay.export_guard import ExportGuard
from certrelay.metrics import count
from certrelay.profiles import Profile, load_profiles_file

# The answer's fields a log line may hold (references and facts, never a secret's value).
LOGGED = ("prefix", "serial", "fingerprint", "not_after")


@dataclasses.dataclass(frozen=True)
class Exporter:
    """Settings (with the export role, exempt from the passphrases' Deny), deployed profiles,
    the ACM, S3 and Secrets Manager clients, and the cost guard's records; a hub's sessions
    export its members' certificates through their export role (the bundle stays the hub's)."""

    settings: ExportSettings
    profiles: dict[str, Profile]
    acm: Any
    s3: Any
    secretsmanager: Any
    guard: ExportGuard
    sessions: Sessions | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Exporter:
        settings = ExportSettings.from_env(environ)
        caller = client("sts").get_caller_identity()["Arn"]  # the export role, for the Deny
        sessions = sessions_from_env(environ)
        organization = sessions.organization if sessions is not None else None
        settings = dataclasses.replace(
            settings, export_role_arn=role_arn(caller), organization=organization
        )
        profiles = load_profiles_file(environ.get("PROFILES_FILE"))
        guard = ExportGuard.from_env(environ, client("dynamodb"))
        acm, s3, secretsmanager = (client(n) for n in ("acm", "s3", "secretsmanager"))
        return cls(settings, profiles, acm, s3, secretsmanager, guard, sessions)

    def acm_for(self, event: Mapping[str, Any]) -> Any:
        """ACM where the payload's certificate is: this function's client at home, else the
        member's export role (an ARN that is not a certificate's is refused by the export)."""
        decision = event.get("decision")
        certificate = decision.get("certificate") if isinstance(decision, Mapping) else None
        arn = certificate.get("arn") if isinstance(certificate, Mapping) else None
        own = lambda _: self.acm  # noqa: E731
        return clients_for(str(arn or ""), "export", sessions=self.sessions, own=own)("acm")

    def export(self, event: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
        """Export the payload's certificate once per serial; S3 references back, no secrets.
        A profile at its daily cap is counted in the ExportCapReached metric (its alarm pages
        operations) before the error ends the run."""
        try:
            return export_certificate(
                event,
                acm_client=self.acm_for(event),
                s3_client=self.s3,
                secrets_client=self.secretsmanager,
                settings=self.settings,
                profiles=self.profiles,
                guard=self.guard,
                now=now,
            )
        except ExportCapReached:
            count("ExportCapReached", {})  # the service dimension only: the alarm's metric
            raise
