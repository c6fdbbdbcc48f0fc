"""The README as the tests read it: its code (fenced blocks and inline spans), and the
settings, ``make`` targets and ``connector`` commands named there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

_FENCED = re.compile(r"^```([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
_INLINE = re.compile(r"`([^`\n]+)`")
_SETTING = re.compile(r"\bCONNECTOR_[A-Z0-9_]*[A-Z0-9]")
_MAKE = re.compile(r"(?:^|[\s;&|(])make[ \t]+([a-z][\w-]*)", re.MULTILINE)
# `connector [global options] command [subcommand]`; not connector.toml, connector/..., a URL
_CONNECTOR = re.compile(
    r"(?:^|[\s;&|(])connector[ \t]+(?:-{1,2}[a-z][\w-]*[ \t]+)*([a-z][\w-]*)(?:[ \t]+([a-z][\w-]*))?",
    re.MULTILINE,
)


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the fenced code blocks of ``language`` (```yaml ... ```)."""
    return [body for lang, body in _FENCED.findall(text) if lang.strip() == language]


def code(text: str) -> str:
    """Every fenced block and inline code span of ``text``, one after the other."""
    blocks = [body for _, body in _FENCED.findall(text)]
    prose = _FENCED.sub("", text)
    return "\n".join([*blocks, *_INLINE.findall(prose)])


def settings_named(text: str) -> set[str]:
    """Every ``CONNECTOR_...`` name in ``text``, prose included."""
    return set(_SETTING.findall(text))


def make_targets_named(text: str) -> set[str]:
    return set(_MAKE.findall(code(text)))


def commands_named(text: str) -> set[tuple[str, str]]:
    """(command, following word) pairs of every ``connector ...`` in the code of ``text``."""
    return set(_CONNECTOR.findall(code(text)))


def makefile_targets(makefile: Path) -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", makefile.read_text(), re.MULTILINE))


def toml_keys(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The dotted paths of the values of a parsed TOML document (sections flattened)."""
    keys: list[tuple[str, ...]] = []
    for key, value in table.items():
        if isinstance(value, dict):
            keys.extend(toml_keys(value, (*prefix, key)))
        else:
            keys.append((*prefix, key))
    return keys
