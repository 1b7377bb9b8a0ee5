"""A function's cold start without the cyclic garbage collector walking what it imports.

Importing a handler's modules and building its clients allocates a few hundred thousand objects
that live as long as the container: modules, classes, botocore's service models, pydantic's
validators. While they are made, the cyclic collector runs over and over (160-180 collections
in a handler's init, one or more of them full, 45-60 ms of it here) and finds nothing to free.
So the handlers import inside `init()` and build their dependencies through `once`: the collector
is off for exactly that work, what it made is then frozen (`gc.freeze()`: later collections skip
those long-lived objects instead of walking them again) and the collector is back as it was, with
its thresholds untouched. Invocations run with the collector on, as before.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


@contextmanager
def init() -> Iterator[None]:
    """The collector off for the block; afterwards what the block made is frozen (only when the
    block ended normally) and the collector is on again if it was on before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()


class once(Generic[T]):  # a decorator, named like functools.cache
    """A handler's `_dependencies()`: built on its first call, inside `init()`, then kept.

    `cache_clear()` forgets the built value (tests that change a handler's environment); a
    rebuild runs with the collector as it is and freezes nothing: only the container's first
    build is its init.
    """

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._built: list[T] = []
        self._initialised = False
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    def __call__(self) -> T:
        if not self._built:
            if self._initialised:
                value = self._build()
            else:
                with init():
                    value = self._build()
                self._initialised = True
            self._built[:] = [value]
        return self._built[0]

    def cache_clear(self) -> None:
        self._built.clear()
