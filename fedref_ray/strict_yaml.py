"""YAML as configs need it: the safe loader, but a key given twice in one mapping is an error, not "last wins".

PyYAML silently keeps the last of two equal keys, so `rounds: 5` followed further down by `rounds: 50`
runs 50 rounds without a word; a duplicate is nearly always a mistake, so it is refused, with its line.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.YAMLError):
    """A mapping holds `key` twice; `line` is the 1-based line of the second one."""

    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"key {key!r} appears twice (again at line {line})")
        self.key, self.line = key, line


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` merges are resolved by the base loader
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base loader reports it
                break
            if duplicate:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_strict(text: str) -> Any:
    """yaml.safe_load, refusing duplicate keys with DuplicateKeyError (a yaml.YAMLError)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
