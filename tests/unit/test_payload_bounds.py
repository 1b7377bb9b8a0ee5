"""HIS-06: the largest payload the design allows stays within 64 KiB in every state.

Step Functions refuses a state input or output above 256 KiB; the checklist keeps a 4x margin.
The payload is built by the real code: triage() (ACM's answer replaced by a certificate with 100
SANs of 253 characters), the profile at MAX_TARGETS, the Map's results through
distribution.result() at DETAIL_LIMIT, the report through distribution.summarize(), and every
part validated by the workflow models. Sizes are compact JSON in UTF-8, as Step Functions counts.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from certrelay import distribution
from certrelay import triage as triage_module
from certrelay.approval_pages import MAX_REASON_BYTES
from certrelay.config import Settings
from certrelay.owners import OWNER_TAG, PROFILE_TAG
from certrelay.profiles import MAX_TARGETS, Profile
from certrelay.workflow import (
    DETAIL_LIMIT,
    DistributionItem,
    OwnerMailItem,
    TargetResult,
    Workflow,
)
from tests.unit import factories

LIMIT = 64 * 1024
SANS = 100  # ACM's default quota of names per certificate
TAG_VALUE_LIMIT = 256  # ACM's longest tag value: bounds the owner tag
# profiles.py caps no list of people; a team of this size is the assumption measured here
PEOPLE = 5
PROFILE = "p" * 64  # ProfileName's longest
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:" + "s" * 80 + ":" + "e" * 80
SETTINGS = Settings.from_env(
    {
        "FALLBACK_OWNER_EMAIL": "ops@example.com",
        "AWS_REGION": "us-east-1",
        "STACK_ACCOUNT_ID": "123456789012",
        "STACK_PARTITION": "aws",
    }
)


def size(part: Any) -> int:
    return len(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def longest_name(index: int) -> str:
    """A 253-character DNS name (four labels, the first unique)."""
    name = ".".join([f"h{index:03d}".ljust(63, "a"), "b" * 63, "c" * 63, "d" * 57]) + ".com"
    assert len(name) == 253
    return name


def owner_tag() -> str:
    """As many owner addresses as ACM's tag value holds."""
    addresses: list[str] = []
    while (
        len(",".join([*addresses, f"tag-owner{len(addresses):02d}@example.com"])) <= TAG_VALUE_LIMIT
    ):
        addresses.append(f"tag-owner{len(addresses):02d}@example.com")
    return ",".join(addresses)


def largest_profile() -> Profile:
    def people(role: str) -> list[str]:
        return [f"{role}{i}".ljust(40, "x") + "@example.com" for i in range(PEOPLE)]

    return Profile.model_validate(
        {
            "owners": people("owner"),
            "approvers": people("approver"),
            "escalation": people("escalation"),
            "window": {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "start": "22:00",
                "end": "04:00",
                "timezone": "America/Argentina/ComodRivadavia",
            },
            "max_concurrency": 1,
            "targets": [
                {
                    "kind": "server",
                    "name": f"t{i:03d}".ljust(48, "x"),
                    "instances": [f"i-{i:017x}", f"i-{i + 1000:017x}"],
                    "cert_path": "/etc/ssl/certs/service.pem",
                    "key_path": "/etc/ssl/private/service.key",
                    "chain_path": "/etc/ssl/certs/chain.pem",
                    "reload": "nginx",
                }
                for i in range(MAX_TARGETS)
            ],
        }
    )


@pytest.fixture
def decision(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Triage's decision for a renewal of the largest certificate in the largest profile."""
    names = tuple(longest_name(i) for i in range(SANS))
    certificate = replace(
        factories.certificate(),
        domain=names[0],
        sans=names,
        type="PRIVATE",
        exportable=True,
        renewal_eligibility="ELIGIBLE",
        serial=":".join(["ab"] * 20),
        tags={OWNER_TAG: owner_tag(), PROFILE_TAG: PROFILE},
    )
    monkeypatch.setattr(triage_module, "read_certificate", lambda client, arn: certificate)
    raw = {
        "version": "0",
        "id": "1",
        "detail-type": "ACM Certificate Available",
        "source": "aws.acm",
        "account": "123456789012",
        "time": factories.NOW.isoformat(),
        "region": "us-east-1",
        "resources": [factories.ARN],
        "detail": {"Action": "RENEWAL", "CommonName": names[0]},
    }
    return triage_module.triage(
        raw,
        acm_client=None,  # type: ignore[arg-type]  # read_certificate is replaced above
        settings=SETTINGS,
        profiles={PROFILE: largest_profile()},
        execution_arn=EXECUTION,
        now=factories.NOW,
    )


def outputs_of_a_run(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The payload after each state that adds to it, in the order of the longest run."""
    results = [
        distribution.result(target["id"], "server", "FAILED", "x" * (DETAIL_LIMIT + 50))
        for target in decision["distribution"]["targets"]
    ]
    summary = distribution.summarize(results)
    additions: list[tuple[str, str, Any]] = [
        ("Notify Owners", "owner_mail", {"unmailed": False}),
        (
            "Request Approval",
            "approval_decision",
            {
                "decision": "approve",
                "approver": decision["approval"]["approvers"][0],
                "reason": "r" * MAX_REASON_BYTES,
                "decided_at": "2025-01-01T12:00:00Z",
            },
        ),
        ("Find Window", "window", {"opens_at": "2025-01-07T01:00:00Z"}),
        (
            "Export Certificate",
            "bundle",
            {
                "serial": "ab" * 20,
                "fingerprint": "f" * 64,
                "not_after": "2026-01-01T00:00:00Z",
                "created": True,
            },
        ),
        ("Distribute Certificate", "distribution.results", results),
        ("Report Distribution", "report", {"sent": len(decision["recipients"]), **summary}),
        ("Raise Finding", "findings", {"ids": [EXECUTION + "/" + "f" * 64]}),
    ]
    payload = json.loads(json.dumps(decision))
    outputs = {"Triage Event": json.loads(json.dumps(payload))}
    for state, path, value in additions:
        *parents, leaf = path.split(".")
        holder = payload
        for parent in parents:
            holder = holder[parent]
        holder[leaf] = value
        Workflow.model_validate(payload)  # each part has the shape the workflow models allow
        outputs[state] = json.loads(json.dumps(payload))
    return outputs


def test_every_state_output_of_the_largest_run_fits_in_64_kib(decision):
    # GIVEN the largest decision and the longest run: approval, window, export, 100 failed targets
    # WHEN each state adds its part
    outputs = outputs_of_a_run(decision)
    sizes = {state: size(payload) for state, payload in outputs.items()}
    # THEN no state's output reaches 64 KiB (Step Functions refuses 256 KiB)
    assert len(decision["distribution"]["targets"]) == MAX_TARGETS
    results = outputs["Report Distribution"]["distribution"]["results"]
    assert all(len(r["detail"]) == DETAIL_LIMIT for r in results)
    assert max(sizes.values()) <= LIMIT, {
        "sizes": sizes,
        "mail": size(decision["mail"]),
        "recipients": len(decision["recipients"]),
        "results": size(results),
        "report": size(outputs["Report Distribution"]["report"]),
    }


def test_every_map_item_of_the_largest_run_fits_in_64_kib(decision):
    # GIVEN one item of each Map (an owner's mail, a target to distribute to, its result)
    mail = OwnerMailItem.model_validate(
        {
            "mail": decision["mail"],
            "recipient": decision["recipients"][0],
            "marker": "m" * 200,
            "expires_at": "1830000000",
            "summary": decision["summary"],  # what the digest lists for a held mail
        }
    )
    target = decision["distribution"]["targets"][0]
    item = DistributionItem.model_validate(
        {
            "certificate_arn": factories.ARN,
            "serial": "ab" * 20,
            "profile": PROFILE,
            "target": target,
        }
    )
    result = TargetResult.model_validate(
        distribution.result(target["id"], "server", "FAILED", "x" * DETAIL_LIMIT)
    )
    # WHEN each is validated by its model
    # THEN each fits in 64 KiB
    sizes = {
        "Notify Owners item": size(mail.model_dump(mode="json")),
        "Distribute Certificate item": size(item.model_dump(mode="json")),
        "target result": size(result.model_dump(mode="json")),
    }
    assert max(sizes.values()) <= LIMIT, sizes
