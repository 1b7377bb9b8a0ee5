"""How a command that runs the engine uses Python's cyclic garbage collector.

The engine's process holds about 250,000 long-lived objects (moto's and botocore's modules and
models, the deployed stack) and makes few short-lived cycles (the demo peaks at about 190 MB
either way). With the default thresholds the collector walked all of them again and again:
about 1 s of `certrelay demo` in full collections, and 0.5-1 s more at exit, where the
interpreter collects everything once more before the process ends. Here:

- the engine's modules are imported with the collector off, then frozen (gc.freeze: moved out
  of every generation, never walked again);
- young objects are collected every 200,000 allocations instead of 700, and the older
  generations rarely: what the run makes mostly lives as long as the run, and it makes few
  cycles. At 10,000, a demo spent 70-85 ms in about 20 young collections that freed almost
  nothing (its peak memory is 197-198 MB with them, 199-201 MB without); at 200,000 a demo
  reaches no threshold (gc time 5-10 ms), and a longer run still collects, rarely;
- when the command is the whole process, everything is frozen again at the end, so the
  interpreter's exit does not walk it (atexit handlers and cleanup run as usual).

When a caller runs a command in its own process (tests call `main([...])`), the collector is
given back as it was found: unfrozen, the caller's thresholds, enabled or not.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

YOUNG = 200_000  # allocations between collections of the youngest generation (default 700)
OLDER = 50  # collections of one generation between collections of the next (default 10)


@contextlib.contextmanager
def engine_run(*, whole_process: bool) -> Iterator[Callable[[], None]]:
    """The block imports what it runs, calls the yielded `imported()`, then runs."""
    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    gc.disable()

    def imported() -> None:
        gc.freeze()
        gc.set_threshold(YOUNG, OLDER, OLDER)
        gc.enable()

    try:
        yield imported
    finally:
        if whole_process:
            gc.freeze()  # nothing of the run is walked again at exit
        else:
            gc.unfreeze()
            gc.set_threshold(*thresholds)
            if enabled:
                gc.enable()
            else:
                gc.disable()
