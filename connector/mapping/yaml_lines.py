"""YAML text -> its data, the line of every key in it, and its duplicate keys.

PyYAML composes a node tree (each node with the mark where it starts) before it constructs
Python values from it; ``read_yaml`` keeps both, so that an error about a field of the
data can name the line where that field is written. A duplicate key is not refused here
(PyYAML keeps the last value silently): it is listed, for the loader to report with the
rest of the file's problems.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# a path into the data: mapping keys and sequence indexes, from the top
Path = tuple[Hashable, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Duplicate:
    """A key given twice in one mapping: ``line`` is the later one, which wins."""

    path: Path
    line: int
    first_line: int


@dataclass(frozen=True)
class LinedYaml:
    """The data of one YAML document and where each of its keys is written."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    duplicates: Sequence[Duplicate] = ()

    def line_of(self, path: Sequence[Hashable]) -> int | None:
        """The 1-based line of the key (or sequence item) at ``path``; when it is not in the
        file (a required key left out), the line of the nearest key above it; None when not
        even the first step of ``path`` is there."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def read_yaml(text: str) -> LinedYaml:
    """One YAML document (a safe load) with its lines; ``yaml.YAMLError`` on bad syntax."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return LinedYaml(None)
        lines: dict[Path, int] = {}
        duplicates: list[Duplicate] = []
        _index(loader, node, (), lines, duplicates, set())
        return LinedYaml(loader.construct_document(node), lines, duplicates)
    finally:
        loader.dispose()


def _index(
    loader: yaml.SafeLoader,
    node: Node,
    path: Path,
    lines: dict[Path, int],
    duplicates: list[Duplicate],
    open_nodes: set[int],
) -> None:
    if id(node) in open_nodes:  # an alias of a node that holds it: YAML allows the cycle
        return
    open_nodes.add(id(node))
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = loader.construct_object(key_node)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if child in lines:
                duplicates.append(Duplicate(child, line, lines[child]))
                # the last one is the value the data holds: forget the lines of the first
                for stale in [p for p in lines if p[: len(child)] == child]:
                    del lines[stale]
            lines[child] = line
            _index(loader, value_node, child, lines, duplicates, open_nodes)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _index(loader, item, child, lines, duplicates, open_nodes)
    open_nodes.discard(id(node))
