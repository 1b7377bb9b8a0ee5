"""The certificate's facts as triage read them from ACM (no key material): one closed model,
carried by the workflow's payload (certrelay.workflow) and by certrelay's events out
(certrelay.announcements). Its own module, so that neither pulls the other into a cold start."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CertificateFacts(BaseModel):
    """The certificate as triage read it from ACM (None: ACM has no such certificate)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    arn: str
    domain: str | None
    type: str | None
    status: str | None
    serial: str | None
    not_after: str | None
    days_to_expiry: int | None
    in_use: bool | None
