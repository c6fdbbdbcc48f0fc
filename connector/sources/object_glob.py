"""A CSV source's glob over an object store: the prefix to list, and which keys match.

An object store has no folders to walk: ``s3://bucket/exports/pos_*.csv`` is listed as every
object under ``exports/`` and each key is matched against the rest of the pattern, with the
meaning ``glob.glob(..., recursive=True)`` gives it on a disk: ``*`` and ``?`` stay within
one path segment, ``[...]`` is a character class, a whole segment ``**`` spans any number
of segments (none included). The listing starts at the last ``/`` before the first wildcard,
so only the part of the bucket the pattern can match is listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

WILDCARDS = "*?["


@dataclass(frozen=True)
class ObjectGlob:
    """``pattern`` (an object URL that may hold wildcards) split for listing."""

    pattern: str

    @property
    def prefix(self) -> str:
        """The URL to list: the pattern up to the last ``/`` before its first wildcard (a
        pattern without one: its folder, where the one object it names is)."""
        first = min(
            (i for i, c in enumerate(self.pattern) if c in WILDCARDS), default=len(self.pattern)
        )
        return self.pattern[: self.pattern.rfind("/", 0, first) + 1]

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(_translate(self.pattern[len(self.prefix) :]))

    def matches(self, url: str) -> bool:
        """Whether the object ``url`` (under :attr:`prefix`) is one the pattern names."""
        return url.startswith(self.prefix) and bool(self._regex.fullmatch(url[len(self.prefix) :]))


def _translate(pattern: str) -> str:
    """A regex for keys (relative to the prefix) that the glob ``pattern`` matches."""
    out: list[str] = []
    segments = pattern.split("/")
    for n, segment in enumerate(segments):
        last = n == len(segments) - 1
        if segment == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        out.append(_segment(segment))
        if not last:
            out.append("/")
    return "".join(out)


def _segment(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := _class_end(segment, i)) > 0:
            body = segment[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """The index of the ``]`` closing the class opened at ``start``; -1 if it is not one
    (``fnmatch``'s rule: a ``]`` right after ``[`` or ``[!`` belongs to the class)."""
    i = start + 1
    if i < len(segment) and segment[i] == "!":
        i += 1
    if i < len(segment) and segment[i] == "]":
        i += 1
    end = segment.find("]", i)
    return end
