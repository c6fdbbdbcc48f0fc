"""What the POS file sensor remembers between ticks: little, and never a list of every file.

The ledger's file registry is the durable record of what was ingested, with each file's
size and ETag as listed (``connector.sources.registry``). The cursor holds, per csv mapping:

- ``listing``: a digest of (path, size, ETag) of the mapping's files, as the last tick
  listed them, and of the first partition day.
- ``until``: the earliest day after the last partition day then that a listed file belongs
  to (today's export, say), or none. A tick whose listing has the same digest, with nothing
  waiting and no file whose day has ended since (``until`` not passed), has nothing to look
  at: it neither reads the registry, nor places a file in its day, nor hashes one.
- ``waiting``: the files launched whose content the registry does not hold (yet): their
  run has not ingested them, or failed. Path -> (size, ETag, content: the checksum, or an
  object's ETag when it was launched without a download), so a file launched once is not
  hashed, nor launched, again until it changes. An entry goes as soon as the registry holds
  the file as listed, or the file is gone.

So the cursor's size is bounded by the number of csv mappings and of files not ingested,
whatever the number of files ingested: at most 120 bytes per mapping plus its name's length,
and 100 bytes per waiting file plus its path's length.

The cursor of earlier releases (a JSON object ``{"<mapping>:<path>": sha256}`` of every
file ever seen; an object's value its ETag) is read as files waiting at an unknown ETag: the
first tick hashes each local file once (what every tick did then), launches none whose
content it already held, and keeps only those the registry does not hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connector.sources.source_files import SourceFile

VERSION = 2


@dataclass(frozen=True)
class Waiting:
    """A file launched at this content and not (yet) ingested at it."""

    size: int | None  # None: carried over from a cursor of an earlier release
    etag: str | None
    content: str  # its sha256, or an object's ETag (unquoted) when launched unhashed

    def lists_as(self, listed: SourceFile) -> bool:
        """Whether ``listed`` is the file as it was when it was launched."""
        return self.etag is not None and (self.size, self.etag) == (listed.size, listed.etag)


@dataclass
class MappingCursor:
    """One mapping's part of the cursor."""

    listing: str | None = None  # digest of the last listing (``listing_digest``)
    until: str | None = None  # the earliest later day of a listed file (YYYY-MM-DD)
    waiting: dict[str, Waiting] = field(default_factory=dict)  # path -> as hashed

    def settled(self, listing: str, last_day: str) -> bool:
        """Whether a tick that lists ``listing`` with ``last_day`` the last partition day
        has nothing to look at for this mapping (see the module's docstring)."""
        return (
            self.listing == listing
            and not self.waiting
            and (self.until is None or self.until > last_day)
        )


@dataclass
class ArrivalCursor:
    """The POS sensor's cursor: per csv mapping, its :class:`MappingCursor`."""

    mappings: dict[str, MappingCursor] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> ArrivalCursor:
        """The cursor in ``text``: this release's form, the earlier one, or none (empty)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"pos_files cursor is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"pos_files cursor is not a JSON object: {text[:80]!r}")
        if "version" not in data:
            return cls._from_seen(data)
        mappings = data.get("mappings")
        if data["version"] != VERSION or not isinstance(mappings, dict):
            raise ValueError(f"pos_files cursor: not a version {VERSION} cursor: {text[:80]!r}")
        return cls({name: _mapping(name, part) for name, part in mappings.items()})

    @classmethod
    def _from_seen(cls, seen: dict[str, Any]) -> ArrivalCursor:
        """The earlier form, ``{"<mapping>:<path>": sha256}``: each file waiting at an unknown
        ETag (hashed once more, then dropped if the registry holds it)."""
        cursor = cls()
        for key, sha in seen.items():
            name, sep, path = key.partition(":")
            if not sep or not isinstance(sha, str):
                raise ValueError(f"pos_files cursor: {key!r} is not '<mapping>:<path>': sha256")
            part = cursor.mappings.setdefault(name, MappingCursor())
            part.waiting[path] = Waiting(size=None, etag=None, content=sha)
        return cursor

    def to_json(self) -> str:
        """The cursor as compact JSON (what ``parse`` reads back)."""
        mappings = {
            name: {
                "listing": part.listing,
                "until": part.until,
                "waiting": {
                    path: [w.size, w.etag, w.content] for path, w in sorted(part.waiting.items())
                },
            }
            for name, part in sorted(self.mappings.items())
        }
        return json.dumps({"version": VERSION, "mappings": mappings}, separators=(",", ":"))


def _mapping(name: str, part: Any) -> MappingCursor:
    try:
        waiting = {
            path: Waiting(size=size, etag=etag, content=content)
            for path, (size, etag, content) in part["waiting"].items()
        }
        return MappingCursor(listing=part["listing"], until=part["until"], waiting=waiting)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"pos_files cursor: mapping {name!r}: unreadable ({exc})") from exc


def listing_digest(files: Iterable[SourceFile], first_day: str) -> str:
    """A digest (32 hex digits) of the files' (path, size, ETag), in the order given, and of
    ``first_day``, the first partition day (a setting: files before it are not looked at)."""
    lines = "\n".join(f"{f.path}\0{f.size}\0{f.etag}" for f in files)
    return hashlib.sha256(f"{first_day}\n{lines}".encode()).hexdigest()[:32]
