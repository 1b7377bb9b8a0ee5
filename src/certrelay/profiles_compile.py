"""Profiles compiled to JSON at build, so the functions need no PyYAML at their cold start.

`python -m certrelay.profiles_compile --write-json config/profiles.yaml` writes
`config/profiles.json` (`--check`: exit 1 unless it is current): the parsed document and the
sha256 of the YAML's bytes. The functions read that document instead of importing PyYAML and
parsing the file at every cold start, but only while the hash matches the YAML beside it
(certrelay.profiles.load_profiles_file), so an edited YAML is never served from a stale JSON.
The YAML is validated before anything is written; a document JSON cannot carry unchanged
(dates, non-string keys) is refused.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from certrelay.errors import ProfileError
from certrelay.profiles import compiled_path, load_profiles
from certrelay.profiles_yaml import parse


def compiled_json(file: Path) -> str:
    """The JSON compiled from a profiles YAML file: validated first (a ProfileError if bad)."""
    raw = file.read_bytes()
    text = raw.decode("utf-8")
    load_profiles(text, source=str(file))  # the same checks the functions make
    document = parse(text, source=str(file))
    try:
        carried = json.loads(json.dumps(document))
    except (TypeError, ValueError):
        carried = None
    if carried != document:
        raise ProfileError(f"{file}: holds values JSON cannot carry unchanged; not compiled")
    compiled = {"sha256": hashlib.sha256(raw).hexdigest(), "document": document}
    return json.dumps(compiled, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("--write-json", "--check"):
        usage = "usage: python -m certrelay.profiles_compile --write-json|--check PROFILES_YAML"
        print(usage, file=sys.stderr)  # noqa: T201
        return 2
    file = Path(argv[1])
    try:
        text = compiled_json(file)
    except (OSError, ProfileError) as error:
        print(str(error).splitlines()[0], file=sys.stderr)  # noqa: T201
        return 2
    target = compiled_path(file)
    if argv[0] == "--check":
        current = target.exists() and target.read_text(encoding="utf-8") == text
        if not current:
            print(f"{target} is not compiled from {file}", file=sys.stderr)  # noqa: T201
        return 0 if current else 1
    target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
