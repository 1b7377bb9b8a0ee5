"""certrelay.announce checks a detail and writes its JSON as the events-out models do, without
pydantic: compared with the models (certrelay.announcements) over many generated details.

Its check sits between the models' strict and lax modes: what it takes, the models take and
write as the same JSON; what the models take in strict mode, it takes.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from pydantic import ValidationError

from certrelay import announce, announcements

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
CERTIFICATE = {
    "arn": ARN,
    "domain": "web.example.com",
    "type": "PRIVATE",
    "status": "ISSUED",
    "serial": "0a:1b",
    "not_after": "2027-01-01T00:00:00Z",
    "days_to_expiry": 30,
    "in_use": True,
}
DECISION = {"approver": "a@example.com", "decided_at": "2027-01-01T00:00:00Z", "reason": "ok"}
OUTCOME_FIELDS: dict[str, dict[str, Any]] = {
    "owners-notified": {"reason": "Expired", "severity": "HIGH", "owners": ["o@example.com"]},
    "approval-requested": {
        "round": "request",
        "approvers": ["a@example.com"],
        "expires_at": "2027-01-01T00:00:00Z",
        "approval_reason": "PolicyHuman",
    },
    "approved": {"decision": DECISION, "approver": "human", "approval_reason": "PolicyHuman"},
    "rejected": {"decision": {**DECISION, "decision": "reject", "reasons": ["NamesChanged"]}},
    "distributed": {
        "distributed": 2,
        "failed": 0,
        "failed_targets": [],
        "approver": "policy",
        "approval_reason": "LikeForLike",
    },
    "distribution-incomplete": {
        "distributed": 1,
        "failed": 1,
        "failed_targets": ["server i-1"],
        "approver": "human",
        "approval_reason": "PolicyHuman",
    },
    "finding-raised": {"problem": "expired", "severity": "CRITICAL", "finding_ids": ["f-1"]},
    "finding-resolved": {"finding_ids": ["f-1", "f-2"]},
}
ODD_VALUES = [None, "", "x", "3", 3, 0, -1, True, False, 1.5, [], ["a"], ("a",), {}, {"a": 1}]


def valid(outcome: str) -> dict[str, Any]:
    return {
        "schema_version": "1",
        "execution": "arn:aws:states:us-east-1:123456789012:execution:certrelay:run-1",
        "certificate": dict(CERTIFICATE),
        "event_kind": "Available",
        "route": "distribute",
        "profile": "web",
        "outcome": outcome,
        **copy.deepcopy(OUTCOME_FIELDS[outcome]),
    }


def mutated(rng: random.Random) -> dict[str, Any]:
    """A valid detail of some outcome with up to three random changes anywhere in it."""
    detail = valid(rng.choice(sorted(OUTCOME_FIELDS)))
    for _ in range(rng.randrange(4)):
        target = detail
        while True:  # pick a (possibly nested) object to change
            nested = [v for v in target.values() if isinstance(v, dict)]
            if not nested or rng.random() < 0.6:
                break
            target = rng.choice(nested)
        change = rng.randrange(5)
        name = rng.choice(sorted(target)) if target else "x"
        if change == 0:
            target.pop(name, None)
        elif change == 1:
            target[rng.choice(["extra", "token", name + "_"])] = "x"
        elif change == 2:
            target[name] = rng.choice(ODD_VALUES)
        elif change == 3 and isinstance(target.get(name), list):
            target[name] = [*target[name], rng.choice(ODD_VALUES)]
        else:
            target[name] = rng.choice(
                ["approve", "reject", "request", "escalation", "human", "policy", "1", "2"]
            )
    return detail


def models(detail: dict[str, Any], *, strict: bool) -> str | None:
    try:
        return announcements._ANNOUNCEMENT.validate_python(detail, strict=strict).model_dump_json()
    except ValidationError:
        return None


def light(detail: dict[str, Any]) -> str | None:
    try:
        return announce.dumped(detail)
    except announce.AnnouncementInvalid:
        return None


@pytest.mark.parametrize("outcome", sorted(OUTCOME_FIELDS))
def test_given_a_valid_detail_when_dumped_then_the_models_json(outcome: str) -> None:
    detail = valid(outcome)
    assert light(detail) == models(detail, strict=True) is not None


@pytest.mark.parametrize("seed", range(30))
def test_given_many_changed_details_then_taken_only_as_the_models_take_them(seed: int) -> None:
    rng = random.Random(seed)
    refused = 0
    for _ in range(60):
        detail = mutated(rng)
        ours, lax, strict = light(detail), models(detail, strict=False), models(detail, strict=True)
        if ours is not None:
            assert ours == lax, detail  # what it takes, the models take, with the same JSON
        if strict is not None:
            assert ours == strict, detail  # what the models take strictly, it takes
        refused += ours is None
    assert 0 < refused < 60  # the generator makes both kinds


def test_given_an_unknown_outcome_or_no_object_then_refused():
    for detail in ({**valid("finding-resolved"), "outcome": "x"}, {"outcome": None}, ["x"]):
        with pytest.raises(announce.AnnouncementInvalid):
            announce.checked(detail)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "path", "value"),
    [
        ("distributed", ("distributed",), True),
        ("distributed", ("failed",), "1"),
        ("distributed", ("failed",), 1.0),
        ("finding-raised", ("certificate", "days_to_expiry"), False),
        ("finding-raised", ("certificate", "in_use"), 1),
        ("finding-raised", ("certificate", "in_use"), "true"),
        ("finding-raised", ("finding_ids",), ("f-1",)),
        ("finding-raised", ("finding_ids",), "f-1"),
        ("finding-raised", ("profile",), None),
        ("finding-raised", ("severity",), None),
        ("approved", ("decision", "decision"), "maybe"),
        ("approved", ("decision", "reasons"), None),
        ("approved", ("approver",), "someone"),
        ("approval-requested", ("round",), "escalation"),
        ("finding-resolved", ("schema_version",), "2"),
    ],
)
def test_given_one_field_changed_then_taken_only_as_the_models_take_it(outcome, path, value):
    detail = valid(outcome)
    *parents, name = path
    target = detail
    for parent in parents:
        target = target[parent]
    target[name] = value
    ours = light(detail)
    if ours is not None:
        assert ours == models(detail, strict=False)
    if models(detail, strict=True) is not None:
        assert ours == models(detail, strict=True)
