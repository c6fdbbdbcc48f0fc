"""New or changed source files per partition day: what the POS file sensor launches.

A tick lists each csv mapping's files (metadata only: path, size, ETag;
``connector.sources.source_files``) and hashes only the files it cannot place from that:

1. a mapping whose files list exactly as at the last tick (the cursor's digest of the
   listing), with no file waiting and none whose day has ended since, is done: no registry
   read, no hash;
2. a file the ledger's file registry holds with this size and ETag was ingested with these
   bytes: not hashed;
3. a file the cursor holds as waiting (launched, not ingested yet) with this size and ETag
   was launched with these bytes: not hashed, not launched again;
4. an object whose URL the registry has never held is launched by its ETag, not downloaded
   (its run hashes it as it reads it);
5. any other file is new or changed: hashed (an object streamed). Its checksum decides: one
   the registry holds for the path (a file touched, or written again, with bytes already
   ingested) launches nothing, and the registry records the new ETag, so the file is not
   hashed again; one the cursor held for it launches nothing either; any other launches
   its day.

So a file that is rewritten launches its partition again and one that is only touched does
not; a file some run already ingested with this content (a sync, the demo, a sensor of
another instance) launches nothing, even on a sensor's first tick, when its cursor is empty.
A file whose day is not a partition yet (today's, or before the first partition) is neither
hashed nor recorded: it is seen once its day is over. What the cursor keeps, and its bound:
``connector.sources.arrival_cursor``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from connector.ledger import Ledger
from connector.mapping import CsvSource, SourceMapping
from connector.settings import Settings
from connector.sources.arrival_cursor import ArrivalCursor, MappingCursor, Waiting, listing_digest
from connector.sources.csv import file_days
from connector.sources.registry import FileRegistry, Recorded, file_sha256, recorded_files
from connector.sources.source_files import SourceFile, list_files

log = logging.getLogger(__name__)


@dataclass
class Arrivals:
    """The partitions to run and the cursor to keep once they are requested."""

    # (mapping, day) -> the new files as `name@<sha256, or an object's ETag>[:16]`, sorted
    runs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    cursor: ArrivalCursor = field(default_factory=ArrivalCursor)
    not_yet: list[tuple[str, str]] = field(default_factory=list)  # (file, day) left for later
    hashed: list[str] = field(default_factory=list)  # the files hashed: new or changed ones
    listed: int = 0  # files listed


def new_source_files(
    mappings: Sequence[SourceMapping],
    settings: Settings,
    cursor: ArrivalCursor,
    now: dt.datetime,
    ledger: Ledger,
) -> Arrivals:
    """The new or changed files of the csv ``mappings`` on partition days from
    ``partition_start`` to yesterday (local to ``settings.tz``), by (mapping, day), and the
    cursor that holds what this tick learnt (see the module's docstring)."""
    newest = (now.astimezone(settings.tz).date() - dt.timedelta(days=1)).isoformat()
    oldest = settings.partition_start.isoformat()
    found = Arrivals()
    to_look: list[tuple[SourceMapping, CsvSource, list[SourceFile], str]] = []
    for mapping in mappings:
        source = mapping.source
        if not isinstance(source, CsvSource):
            continue
        files = list_files(source.path)
        found.listed += len(files)
        before = cursor.mappings.get(mapping.name, MappingCursor())
        digest = listing_digest(files, oldest)
        if before.settled(digest, newest):
            found.cursor.mappings[mapping.name] = before
        else:
            to_look.append((mapping, source, files, digest))
    # one query for every mapping that has something to look at
    recorded = recorded_files(ledger, [mapping.name for mapping, *_ in to_look])
    for mapping, source, files, digest in to_look:
        mine = recorded.get(mapping.name, {})
        # only the files the registry does not hold as listed are placed in their day
        unplaced = [f for f in files if not _ingested_as_listed(f, mine)]
        on_days: list[tuple[SourceFile, str]] = []
        later: list[str] = []  # days not over yet
        for file, day in file_days(source, unplaced, settings.tz):
            if day is None:
                continue
            if oldest <= (iso := day.isoformat()) <= newest:
                on_days.append((file, iso))
            else:
                found.not_yet.append((file.path, iso))
                if iso > newest:
                    later.append(iso)
        before = cursor.mappings.get(mapping.name, MappingCursor())
        registry = FileRegistry(ledger, mapping.name)
        after = _look(registry, mine, on_days, before, digest, found)
        after.until = min(later, default=None)
        found.cursor.mappings[mapping.name] = after
    for files_of_day in found.runs.values():
        files_of_day.sort()
    return found


def _ingested_as_listed(file: SourceFile, recorded: dict[str, list[Recorded]]) -> bool:
    return any(r.lists_as(file) for r in recorded.get(file.path, ()))


def _look(
    registry: FileRegistry,
    recorded: dict[str, list[Recorded]],
    on_days: list[tuple[SourceFile, str]],
    before: MappingCursor,
    digest: str,
    found: Arrivals,
) -> MappingCursor:
    """One mapping's files on partition days that its registry does not hold as listed,
    checked against its cursor and hashed when need be: the runs and hashes go into
    ``found``; returns the mapping's new cursor (its ``listing`` None when a file could not
    be read, so that the next tick looks again)."""
    after = MappingCursor(listing=digest)
    same_bytes: list[tuple[SourceFile, str]] = []
    for file, day in on_days:
        waiting = before.waiting.get(file.path)
        if waiting is not None and waiting.lists_as(file):
            after.waiting[file.path] = waiting
            continue
        records = recorded.get(file.path, [])
        if file.is_object and file.etag and not records:
            content = file.etag.strip('"')  # launched by its ETag: nothing downloaded
        else:
            try:
                content, _size = file_sha256(file.path)
            except OSError as exc:  # gone or unreadable since it was listed: next tick
                log.warning("%s: cannot be read (%s); looked at again next tick", file.path, exc)
                after.listing = None
                continue
            found.hashed.append(file.path)
            if any(r.sha256 == content for r in records):
                same_bytes.append((file, content))
                continue
        after.waiting[file.path] = Waiting(file.size, file.etag, content)
        if waiting is not None and waiting.content == content:
            continue  # launched with these bytes already
        found.runs.setdefault((registry.mapping, day), []).append(f"{file.name}@{content[:16]}")
    registry.restamp(same_bytes)
    return after
