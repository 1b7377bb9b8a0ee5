"""`certrelay local up` stops on Ctrl-C or SIGTERM, and a burst of them stops it once, cleanly.

GIVEN the loop's signal handlers (certrelay.cli.up._stopped_by_signals), WHEN a signal asks it
to stop and more follow after the loop has ended (the clean exit still running), THEN the late
ones are ignored instead of raising KeyboardInterrupt in the exit; WHEN no signal came, THEN the
handlers that were there before are back.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from certrelay.cli.up import _stopped_by_signals

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@pytest.fixture
def handlers_kept() -> Iterator[None]:
    """Whatever a test leaves, this process gets its own handlers back."""
    before = {number: signal.getsignal(number) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


@pytest.mark.parametrize("number", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_after_a_stop_signal_the_late_ones_of_a_burst_are_ignored(handlers_kept, number):
    stop: list[int] = []
    with _stopped_by_signals(stop):
        os.kill(os.getpid(), number)
        signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the handler has run before this returns
    assert stop == [number]

    # checked before any late signal is sent: Python's own handlers would raise
    # KeyboardInterrupt (ending the test run) or end this process (SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    for _ in range(5):  # late: the loop has ended and the exit is under way
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)


def test_without_a_signal_the_handlers_from_before_are_back(handlers_kept):
    def mine(_number: int, _frame: object) -> None:
        """A caller's own handler."""

    signal.signal(signal.SIGTERM, mine)
    interrupt = signal.getsignal(signal.SIGINT)
    with _stopped_by_signals([]):
        assert signal.getsignal(signal.SIGTERM) is not mine

    assert signal.getsignal(signal.SIGTERM) is mine
    assert signal.getsignal(signal.SIGINT) is interrupt
