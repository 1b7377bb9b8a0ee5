"""Profiles compiled to JSON at build, so the functions need no PyYAML at their cold start.

`python -m certrelay.profiles_compile --write-json config/profiles.yaml` writes
`config/profiles.json` (`--check`: exit 1 unless it is current): the parsed document and the
sha256 of the YAML's bytes. The functions read that document instead of importing PyYAML and
parsing the file at every cold start, but only while the hash matches the YAML beside it
(certrelay.profiles.load_profiles_file), so an edited YAML is never served from a stale JSON.
The YAML is validated before anything is written; a document JSON cannot carry unchanged
(dates, non-string keys) is refused.

The file also carries what that validation produced (`validated`: the profiles as
`model_dump(mode="json", exclude_unset=True)`), the fingerprint of the models that produced it
(`models_fingerprint()`) with the releases of the libraries that ran them, and a digest over all
of it. The functions build their Profile objects from it without validating again only while
that fingerprint is the one their code carries (certrelay.profiles.MODELS), they run the same
releases and the digest holds; otherwise they validate the document.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

from certrelay import approval_policy, profiles, profiles_yaml
from certrelay.errors import ProfileError
from certrelay.profiles import compiled_path, load_profiles, model_libraries, validated_digest
from certrelay.profiles_yaml import parse

# What decides a validation's result: the YAML's reading (certrelay.profiles_yaml), the models
# and their validators (certrelay.profiles, and the approval modes of certrelay.approval_policy),
# how the result is written (this module) and the libraries that run them (their releases are
# recorded beside it: certrelay.profiles.model_libraries()).
MODEL_SOURCES = (profiles, approval_policy, profiles_yaml, sys.modules[__name__])
_FINGERPRINT_LINE = re.compile(rb"^MODELS = .*\n", re.MULTILINE)


def models_fingerprint() -> str:
    """The fingerprint of the models that validate profiles: each MODEL_SOURCES file's bytes
    (certrelay.profiles without its own MODELS line)."""
    digest = hashlib.sha256()
    for module in MODEL_SOURCES:
        source = Path(str(module.__file__)).read_bytes()
        name = Path(str(module.__file__)).name.encode()  # as a module, or run as __main__
        digest.update(name + b"\0" + _FINGERPRINT_LINE.sub(b"", source))
    return f"sha256:{digest.hexdigest()}"


def compiled_json(file: Path) -> str:
    """The JSON compiled from a profiles YAML file: validated first (a ProfileError if bad).

    Refused while certrelay.profiles.MODELS is not these models' fingerprint (the models were
    edited and MODELS not set again): the functions would never take that file's validation,
    and a file compiled before the edit would still carry the fingerprint MODELS names."""
    models = models_fingerprint()
    if models != profiles.MODELS:
        raise ProfileError(
            f"certrelay.profiles.MODELS is not the models' fingerprint: set it to {models!r}, "
            "then compile"
        )
    raw = file.read_bytes()
    text = raw.decode("utf-8")
    valid = load_profiles(text, source=str(file))  # the same checks the functions make
    document = parse(text, source=str(file))
    try:
        carried = json.loads(json.dumps(document))
    except (TypeError, ValueError):
        carried = None
    if carried != document:
        raise ProfileError(f"{file}: holds values JSON cannot carry unchanged; not compiled")
    sha256 = hashlib.sha256(raw).hexdigest()
    dumped = {
        name: profile.model_dump(mode="json", exclude_unset=True) for name, profile in valid.items()
    }
    libraries = model_libraries()
    validated = {
        "libraries": libraries,
        "models": models,
        "profiles": dumped,
        "sha256": validated_digest(sha256, document, [models, libraries], dumped),
    }
    compiled = {"sha256": sha256, "document": document, "validated": validated}
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
