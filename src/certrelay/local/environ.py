"""Changing os.environ while other threads read it.

The process has one os.environ, and the local engine's threads (moto's execution workers, the
handlers, the fleet's installs, botocore's credential and proxy lookups) read it at any moment.
`mock.patch.dict(os.environ, ...)` restores by clearing the mapping and filling it again: a
reader in that window sees no AWS credentials at all, and a late restore writes back a snapshot
over what someone else set since. Here only the keys a block changes are set and put back, each
alone, so os.environ is never empty and a key someone else changed meanwhile keeps their value.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Mapping

# One swap at a time, so two blocks never interleave their saves and restores.
_SWAPS = threading.RLock()


@contextlib.contextmanager
def variables_set(
    values: Mapping[str, str], *, removed: Iterable[str] = (), owner_changes: bool = False
) -> Iterator[None]:
    """os.environ with `values` set and the `removed` keys absent while the block runs.

    When the block ends only those keys come back to what they were, one by one; a key whose
    value someone else changed during the block keeps that value, unless `owner_changes` (the
    block's owner changes its own keys' values as it runs: a Lambda runtime's invocations).
    """
    with _SWAPS:
        keys = list(dict.fromkeys([*values, *removed]))
        before = {key: os.environ.get(key) for key in keys}
        for key in removed:
            os.environ.pop(key, None)
        os.environ.update(values)
        ours = {key: os.environ.get(key) for key in keys}
    try:
        yield
    finally:
        with _SWAPS:
            for key, value in before.items():
                if not owner_changes and os.environ.get(key) != ours[key]:
                    continue  # set by someone else since: theirs stands
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
