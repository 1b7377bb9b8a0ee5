"""Plain Python values to DynamoDB attribute values and back, as boto3.dynamodb.types does it.

boto3's TypeSerializer and TypeDeserializer live in the boto3 package, whose import brings
s3transfer, concurrent.futures and multiprocessing into a function that makes botocore clients
only (certrelay.clients); these two functions are that mapping without it. The same types map the
same way (None, bool, int and Decimal in DynamoDB's number context, str, bytes, sets of numbers,
strings or bytes, mappings, lists and tuples), with the same TypeErrors for floats, infinities,
unknown types and unknown attribute types. One difference: binary comes back as bytes (boto3
wraps it in its Binary). tests/unit/test_attribute_values.py compares both ways with boto3's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

# DynamoDB's numbers: 38 digits, exponents -128..126, nothing rounded or clamped silently.
DYNAMODB_CONTEXT = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)


def _is_number(value: object) -> bool:
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    return isinstance(value, int | Decimal)  # True in a set is the number 1, as in boto3


def _is_string(value: object) -> bool:
    return isinstance(value, str)


def _is_binary(value: object) -> bool:
    return isinstance(value, bytes | bytearray)


def _number(value: int | Decimal) -> str:
    number = str(DYNAMODB_CONTEXT.create_decimal(value))
    if number in ("Infinity", "NaN"):
        raise TypeError("Infinity and NaN not supported")
    return number


def _set_of(value: object, kind: Callable[[object], bool]) -> bool:
    return isinstance(value, Set) and all(kind(member) for member in value)


def serialize(value: Any) -> dict[str, Any]:
    """One value as a DynamoDB attribute value ({"S": "x"}, {"N": "1"}, {"M": {...}}, ...)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if _is_binary(value):
        return {"B": value}
    if _set_of(value, _is_number):
        return {"NS": [_number(member) for member in value]}
    if _set_of(value, _is_string):
        return {"SS": list(value)}
    if _set_of(value, _is_binary):
        return {"BS": list(value)}
    if isinstance(value, Mapping):
        return {"M": {key: serialize(member) for key, member in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [serialize(member) for member in value]}
    raise TypeError(f'Unsupported type "{type(value)}" for value "{value}"')


def deserialize(value: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value as a plain value (numbers as Decimal, sets as sets)."""
    if not value:
        raise TypeError("Value must be a nonempty dictionary whose key is a valid dynamodb type.")
    given = next(iter(value))
    kind, data = given.upper(), value[given]  # boto3 takes the type's name in any case
    if kind == "NULL":
        return None
    if kind in ("BOOL", "S", "B"):
        return data
    if kind == "N":
        return DYNAMODB_CONTEXT.create_decimal(data)
    if kind == "NS":
        return {DYNAMODB_CONTEXT.create_decimal(member) for member in data}
    if kind in ("SS", "BS"):
        return set(data)
    if kind == "L":
        return [deserialize(member) for member in data]
    if kind == "M":
        return {key: deserialize(member) for key, member in data.items()}
    raise TypeError(f"Dynamodb type {given} is not supported")
