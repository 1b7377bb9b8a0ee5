"""What the local engine and its front ends refuse or give up on, for the CLI and the console
to answer in one line. A module of its own, so a front end can catch these without loading the
engine (and moto)."""

from __future__ import annotations


class BadInput(Exception):
    """Something the user gave us is wrong; the message says what, in one line."""


class EngineTimeout(Exception):
    """An execution did not finish before its deadline."""


class EventRefused(Exception):
    """AWS would refuse this event: EventBridge takes no entry this large, or Step Functions
    refuses it as an execution's input. Nothing was started; the message says why, in a line."""
