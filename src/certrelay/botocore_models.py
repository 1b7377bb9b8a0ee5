"""Cuts botocore's service models down to what certrelay's functions call (certrelay.clients).

A client's creation parses its service's whole model; most of it describes operations certrelay
never calls and their documentation. For each service in `certrelay.clients.OPERATIONS` this
keeps the listed operations, every shape they reach, every exception shape of the service (so
`client.exceptions` is whole) and any endpoint-discovery operation, and drops documentation
strings; everything else is the installed botocore's own text. Run after a botocore upgrade:

    python -m certrelay.botocore_models --write

Never imported by a function: the functions read the JSON this writes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import botocore
from botocore.loaders import JSONFileLoader, Loader

from certrelay.clients import DATA, OPERATIONS, VERSION_FILE

_DOCUMENTATION = frozenset({"documentation", "documentationUrl"})
_KEPT_WHOLE = frozenset({"metadata", "clientContextParams"})


def botocore_loader() -> Loader:
    """A loader of the installed botocore's own data only (no ~/.aws/models, no cut models)."""
    return Loader(extra_search_paths=[Loader.BUILTIN_DATA_PATH], include_default_search_paths=False)


def api_version(service: str, loader: Loader) -> str:
    """The API version botocore's loader picks for `service` (its newest)."""
    return str(loader.determine_latest_version(service, "service-2"))


def full_model(service: str, loader: Loader) -> dict[str, Any]:
    """The installed botocore's own service-2 file for `service`, read afresh: no SDK extras
    merged in (botocore merges those at load time, over the cut model as over its own), and not
    the loader's cached copy, which a loaded client's extras have been merged into."""
    path = Path(Loader.BUILTIN_DATA_PATH, service, api_version(service, loader), "service-2")
    model = JSONFileLoader().load_file(str(path))
    if model is None:
        raise FileNotFoundError(f"{path}.json(.gz)")
    return dict(model)


def reachable_shapes(model: Mapping[str, Any], operations: Iterable[str]) -> set[str]:
    """Every shape the operations' input, output and errors reach."""
    shapes, operation = model["shapes"], model["operations"]
    pending = [
        ref["shape"]
        for name in operations
        for ref in (
            *(operation[name][k] for k in ("input", "output") if k in operation[name]),
            *operation[name].get("errors", ()),
        )
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        shape = shapes[name]
        pending.extend(member["shape"] for member in shape.get("members", {}).values())
        pending.extend(shape[k]["shape"] for k in ("member", "key", "value") if k in shape)
    return seen


def _without_documentation(value: Any) -> Any:
    """`value` without documentation strings, but whole under the keys botocore reads one from
    (a client context parameter's documentation is required)."""
    if isinstance(value, dict):
        return {
            k: v if k in _KEPT_WHOLE else _without_documentation(v)
            for k, v in value.items()
            if not (k in _DOCUMENTATION and isinstance(v, str))
        }
    if isinstance(value, list):
        return [_without_documentation(v) for v in value]
    return value


def kept_operations(model: Mapping[str, Any], wanted: Iterable[str]) -> list[str]:
    """The wanted operations and the service's endpoint-discovery operation, if it has one
    (botocore calls it itself when discovery is on)."""
    operations = model["operations"]
    missing = sorted(set(wanted) - operations.keys())
    if missing:
        raise KeyError(f"not operations of {model['metadata']['serviceId']}: {missing}")
    discovery = (n for n, op in operations.items() if op.get("endpointoperation"))
    return sorted({*wanted, *discovery})


def trimmed_model(service: str, operations: Iterable[str], loader: Loader) -> dict[str, Any]:
    """`service`'s model with only `operations` (see the module's docstring)."""
    model = full_model(service, loader)
    kept = kept_operations(model, operations)
    shapes = reachable_shapes(model, kept) | {
        name for name, shape in model["shapes"].items() if shape.get("exception")
    }
    cut = {k: v for k, v in model.items() if k not in ("operations", "shapes")}
    # botocore's own order throughout: a structure's members are serialised in it
    cut["operations"] = {n: op for n, op in model["operations"].items() if n in kept}
    cut["shapes"] = {n: shape for n, shape in model["shapes"].items() if n in shapes}
    return dict(_without_documentation(cut))


def generated(loader: Loader | None = None) -> dict[str, str]:
    """Every file of the models folder, by path relative to it, as `--write` writes it."""
    loader = loader or botocore_loader()
    files = {VERSION_FILE.name: botocore.__version__ + "\n"}
    for service, operations in sorted(OPERATIONS.items()):
        model = trimmed_model(service, operations, loader)
        path = f"{service}/{api_version(service, loader)}/service-2.json"
        files[path] = json.dumps(model, separators=(",", ":")) + "\n"
    return files


def committed(folder: Path = DATA) -> dict[str, str]:
    """The models folder's files, by path relative to it."""
    return {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix in (".json", "") and "__pycache__" not in path.parts
    }


def write(folder: Path = DATA) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for relative, text in generated().items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {DATA.name}/")
    args = parser.parse_args(argv)
    if args.write:
        write()
        return 0
    if generated() != committed():
        sys.stderr.write(f"{DATA} is stale: run python -m certrelay.botocore_models --write\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
