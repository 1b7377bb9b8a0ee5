"""The profiles file's YAML, parsed strictly: a duplicate key is an error, not the last one kept.

Only where a profiles file is parsed as YAML (certrelay.profiles): the functions read the JSON
compiled from it (certrelay.profiles_compile) while that matches the file.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

from certrelay.errors import ProfileError


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse(text: str, *, source: str) -> object:
    """The YAML document in `text`; a syntax error or a duplicate key is a ProfileError."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ProfileError(f"{source}: not valid YAML{_yaml_where(error)}") from None


def _yaml_where(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or ""
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{where}: {problem}" if problem else where
