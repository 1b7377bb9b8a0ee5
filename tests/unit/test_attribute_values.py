"""certrelay.attribute_values maps values to DynamoDB attribute values and back exactly as
boto3.dynamodb.types does (binary comes back as bytes, not boto3's Binary): compared with boto3
over many generated values, the errors included."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from certrelay.attribute_values import deserialize, serialize

SEEDS = range(40)
VALUES_PER_SEED = 50


def outcome(call: Callable[[Any], Any], given: Any) -> tuple[str, Any]:
    """What call(given) gave: its value, or its exception's type and message."""
    try:
        return "value", call(given)
    except Exception as error:  # the exception itself is what is compared
        return "error", (type(error).__name__, str(error))


def comparable(value: Any) -> Any:
    """An answer to compare: boto3's Binary wrappers opened (certrelay's binary is bytes), and
    each Decimal as its type and text (a NaN equals no other NaN)."""
    if isinstance(value, Binary):
        return value.value
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, dict):
        return {key: comparable(member) for key, member in value.items()}
    if isinstance(value, list):
        return [comparable(member) for member in value]
    if isinstance(value, set):
        return {comparable(member) for member in value}
    return value


def read(call: Callable[[Any], Any], stored: Any) -> tuple[str, Any]:
    kind, answer = outcome(call, stored)
    return kind, comparable(answer) if kind == "value" else answer


def number(rng: random.Random) -> int | Decimal:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randint(-(10**6), 10**6)
    if kind == 1:  # about 38 digits, DynamoDB's precision: past it Inexact/Rounded, as in boto3
        digits = rng.randint(36, 40)
        return rng.choice([1, -1]) * rng.randint(10 ** (digits - 1), 10**digits)
    if kind == 2:
        return Decimal(rng.randint(-(10**9), 10**9)).scaleb(rng.randint(-180, 140))
    if kind == 3:
        return Decimal(f"{rng.randint(0, 10**6)}.{rng.randint(0, 10**6):06d}")
    if kind == 4:
        return rng.choice([Decimal("Infinity"), Decimal("-Infinity"), Decimal("NaN"), Decimal(0)])
    return rng.choice([True, False, 0, -1])


def text(rng: random.Random) -> str:
    alphabet = string.printable + "éß東😀\u0000"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))


def blob(rng: random.Random) -> bytes | bytearray:
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    return data if rng.random() < 0.7 else bytearray(data)


def value(rng: random.Random, depth: int = 0) -> Any:
    """A value of any shape certrelay could store, and some it must refuse as boto3 does."""
    kind = rng.randrange(16 if depth < 3 else 9)
    leaves: list[Callable[[], Any]] = [
        lambda: None,
        lambda: rng.random() < 0.5,
        lambda: number(rng),
        lambda: text(rng),
        lambda: blob(rng),
        lambda: rng.choice([1.5, float("inf"), 0.0]),  # floats: refused
        lambda: rng.choice([object(), complex(1, 2), frozenset()]),  # unsupported / empty set
        lambda: {text(rng) for _ in range(rng.randrange(1, 4))},
        lambda: {rng.randint(-99, 99) for _ in range(rng.randrange(1, 4))},
    ]
    if kind < len(leaves):
        return leaves[kind]()
    if kind == 9:
        return {bytes([rng.randrange(256)]) for _ in range(rng.randrange(1, 3))}
    if kind == 10:
        return {text(rng), rng.randint(0, 9)}  # mixed set: refused
    if kind in (11, 12):
        return {text(rng): value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if kind in (13, 14):
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return tuple(value(rng, depth + 1) for _ in range(rng.randrange(3)))


@pytest.mark.parametrize("seed", SEEDS)
def test_given_many_values_when_serialized_then_as_boto3_serializes_them(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(VALUES_PER_SEED):
        given = value(rng)
        assert outcome(serialize, given) == outcome(TypeSerializer().serialize, given), given


@pytest.mark.parametrize("seed", SEEDS)
def test_given_serialized_values_when_read_back_then_as_boto3_reads_them(seed: int) -> None:
    rng = random.Random(seed)
    storable = 0
    for _ in range(VALUES_PER_SEED):
        kind, stored = outcome(TypeSerializer().serialize, value(rng))
        if kind == "error":
            continue
        assert read(deserialize, stored) == read(TypeDeserializer().deserialize, stored), stored
        storable += 1
    assert storable > VALUES_PER_SEED // 3  # most generated values are storable


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"X": "1"},
        {"s": "lower-case type name"},
        {"Bool": False},
        {"nS": ["1", "2.50"]},
        {"N": "1e200"},
        {"N": "not a number"},
        {"M": {"a": {"L": [{"NULL": True}, {"B": b"\x00"}, {"BS": [b"a", b"b"]}]}}},
    ],
)
def test_given_odd_attribute_values_when_read_then_as_boto3_reads_or_refuses_them(stored):
    assert read(deserialize, stored) == read(TypeDeserializer().deserialize, stored)


@pytest.mark.parametrize(
    "given",
    [
        Decimal("1E-166"),
        Decimal("1E-165"),
        Decimal("12E-165"),
        Decimal("1E-130"),
        Decimal("1.5E-128"),
        Decimal("9.99E+125"),
        Decimal("1E+126"),
        Decimal("1E+127"),
        10**38 - 1,
        10**38,
        10**38 + 1,
        Decimal("-0"),
    ],
    ids=str,
)
def test_given_numbers_at_dynamodbs_limits_when_serialized_then_as_boto3(given):
    assert outcome(serialize, given) == outcome(TypeSerializer().serialize, given)
