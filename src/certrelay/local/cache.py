"""An on-disk cache of what the engine derives from files: the translated template, parsed ASL.

Entries are keyed by a SHA-256 of everything they derive from (the source text, the versions of
the packages that derived them, the deriving code itself), so an edit to any of these is a miss,
never a stale hit. A corrupt or unreadable entry is a miss too. Writes go to a temporary file
renamed into place, so concurrent engines (parallel tests) never read half an entry.

Where: `$CERTRELAY_CACHE_DIR`, else `$XDG_CACHE_HOME/certrelay`, else `~/.cache/certrelay`;
`CERTRELAY_CACHE=off` turns it off. The directory is created private (0700) and an entry is only
read from a directory owned by the current user and writable by no one else: entries are pickles.

Every edit, upgrade or parameter set makes new entries, so each kind keeps only its KEEP entries
used last (a hit marks its entry used): pruned when an entry is stored, i.e. on a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import stat
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

FORMAT = "1"  # bump when an entry's shape changes
# Entries kept of each kind. A demo reads ~60 service models and a template; the test suite
# deploys ~30 parameter sets of the template: all of them stay, old versions go.
KEEP = 300


def directory() -> Path:
    explicit = os.environ.get("CERTRELAY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "certrelay"


def enabled() -> bool:
    return os.environ.get("CERTRELAY_CACHE", "").lower() not in ("off", "0", "false", "no")


def key(kind: str, *parts: str | bytes) -> str:
    """A hex digest of `kind`, the cache format, Python's version and every part, in order."""
    digest = hashlib.sha256()
    for part in (kind, FORMAT, sys.version, *parts):
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def version(distribution: str) -> str:
    """An installed distribution's version, for a key ("" if it is not installed)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def load(kind: str, digest: str) -> Any | None:
    """The entry stored under `digest`, or None: missing, unreadable, corrupt or untrusted."""
    if not enabled():
        return None
    folder = directory()
    if not _trusted(folder):
        return None
    entry = folder / f"{kind}-{digest}.pickle"
    try:
        value = pickle.loads(entry.read_bytes())  # noqa: S301 - our own private directory
    except Exception:  # a truncated or foreign entry is a miss, whatever it raises
        return None
    with contextlib.suppress(OSError):  # used now: the last to be pruned (see store)
        os.utime(entry)
    return value


def store(kind: str, digest: str, value: Any) -> None:
    """Keep `value` under `digest`; a cache that cannot be written is no error."""
    if not enabled():
        return
    folder = directory()
    with contextlib.suppress(Exception):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(folder):
            return
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{kind}-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, folder / f"{kind}-{digest}.pickle")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        _prune(folder, kind)


def _prune(folder: Path, kind: str) -> None:
    """Remove the entries of `kind` beyond the KEEP used last (a race may remove one twice)."""
    entries = []
    for path in folder.glob(f"{kind}-*.pickle"):
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime_ns, path.name, path))
    entries.sort(reverse=True)
    for _, _, path in entries[KEEP:]:
        with contextlib.suppress(OSError):
            path.unlink()


def _trusted(folder: Path) -> bool:
    """Owned by this user and writable by nobody else (so nobody else can plant a pickle)."""
    try:
        status = folder.stat()
    except OSError:
        return False
    owner_ok = not hasattr(os, "getuid") or status.st_uid == os.getuid()
    return owner_ok and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
