"""The engine's on-disk cache (certrelay.local.cache): keyed by content, never trusted blindly.

GIVEN a private cache directory (CERTRELAY_CACHE_DIR), WHEN entries are stored, read back,
corrupted or planted where others could write, THEN a hit returns what was stored and anything
else is a miss, never an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from certrelay.local import cache


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CERTRELAY_CACHE_DIR", str(folder))
    monkeypatch.delenv("CERTRELAY_CACHE", raising=False)
    return folder


def test_a_stored_entry_is_read_back_under_its_key_and_no_other(cache_dir: Path) -> None:
    digest = cache.key("asl", '{"StartAt": "A"}', "5.2.5")

    cache.store("asl", digest, {"program": [1, 2, 3]})

    assert cache.load("asl", digest) == {"program": [1, 2, 3]}
    assert cache.load("asl", cache.key("asl", '{"StartAt": "B"}', "5.2.5")) is None
    assert cache.load("template", digest) is None  # another kind is another entry


def test_the_key_changes_with_every_part_and_their_boundaries() -> None:
    base = cache.key("asl", "definition", "5.2.5")

    assert cache.key("asl", "definition", "5.2.6") != base  # a moto upgrade is a miss
    assert cache.key("asl", "definition!", "5.2.5") != base  # so is an edited definition
    assert cache.key("asl", "definition5", ".2.5") != base  # parts do not run together


def test_a_corrupt_entry_is_a_miss_not_an_error(cache_dir: Path) -> None:
    digest = cache.key("asl", "definition")
    cache.store("asl", digest, ["parsed"])
    (entry,) = cache_dir.glob("asl-*.pickle")

    entry.write_bytes(entry.read_bytes()[:5])  # truncated, as by a crash mid-write elsewhere

    assert cache.load("asl", digest) is None


def test_the_directory_is_private_and_written_without_leftovers(cache_dir: Path) -> None:
    cache.store("template", cache.key("template", "x"), {"Resources": {}})

    assert cache_dir.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in cache_dir.iterdir() if not p.name.startswith("template-")] == []


def test_entries_in_a_directory_others_can_write_are_not_read(cache_dir: Path) -> None:
    digest = cache.key("asl", "definition")
    cache.store("asl", digest, ["parsed"])

    os.chmod(cache_dir, 0o777)  # anyone could have planted a pickle here

    assert cache.load("asl", digest) is None


def test_turned_off_it_neither_reads_nor_writes(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = cache.key("asl", "definition")
    cache.store("asl", digest, ["parsed"])
    monkeypatch.setenv("CERTRELAY_CACHE", "off")

    cache.store("asl", cache.key("asl", "other"), ["other"])

    assert cache.load("asl", digest) is None
    assert len(list(cache_dir.glob("asl-*.pickle"))) == 1


def test_each_kind_keeps_its_entries_used_last_and_no_more(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "KEEP", 3)
    digests = [cache.key("template", f"parameters {n}") for n in range(5)]
    for age, digest in enumerate(digests[:3]):
        cache.store("template", digest, {"n": age})
        os.utime(cache_dir / f"template-{digest}.pickle", ns=(age * 10**9, age * 10**9))
    cache.store("asl", cache.key("asl", "definition"), ["another kind"])

    assert cache.load("template", digests[0]) == {"n": 0}  # used now: no longer the oldest
    cache.store("template", digests[3], {"n": 3})  # four entries: the one used longest ago goes
    cache.store("template", digests[4], {"n": 4})

    assert [cache.load("template", d) for d in digests] == [
        {"n": 0},
        None,
        None,
        {"n": 3},
        {"n": 4},
    ]
    assert cache.load("asl", cache.key("asl", "definition")) == ["another kind"]
