"""New or changed source files per partition day: what the POS file sensor launches.

A file is known by its checksum under ``"<mapping>:<path>"`` (the sensor's cursor), so a file
that is rewritten launches its partition again and one that is only touched does not. The
ledger's file registry counts as seen too: a file some run already ingested with this content
(a sync, the demo, a sensor of another instance) launches nothing, even on a sensor's first
tick, when its cursor is empty. A file whose day is not a partition yet (today's, or before
the first partition) is not recorded: it is seen again once its day is over.

An object in an object store (``path: s3://...``) is known by its ETag instead, from the
listing: nothing is downloaded for an object seen before; one whose ETag is new but whose
path the registry holds is hashed (streamed) once, so the same bytes uploaded again launch
nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connector.ledger import Ledger
from connector.mapping import SourceMapping
from connector.settings import Settings
from connector.sources.csv import list_source_files
from connector.sources.registry import FileRegistry, file_sha256
from connector.sources.source_files import SourceFile


@dataclass
class Arrivals:
    """The partitions to run and the cursor to keep once they are requested."""

    # (mapping, day) -> the new files as `name@sha256[:16]`, sorted
    runs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # "<mapping>:<path>" -> sha256 (an object's: its ETag)
    seen: dict[str, str] = field(default_factory=dict)
    not_yet: list[tuple[str, str]] = field(default_factory=list)  # (file, day) left for later


def new_source_files(
    mappings: Sequence[SourceMapping],
    settings: Settings,
    seen: Mapping[str, str],
    now: dt.datetime,
    ledger: Ledger,
) -> Arrivals:
    """The files of the csv ``mappings`` that neither ``seen`` nor the ledger's file registry
    holds with their checksum, on partition days from ``partition_start`` to yesterday (local
    to ``settings.tz``). Files the registry holds are added to the cursor, not to the runs."""
    newest = (now.astimezone(settings.tz).date() - dt.timedelta(days=1)).isoformat()
    oldest = settings.partition_start.isoformat()
    found = Arrivals(seen=dict(seen))
    for mapping in mappings:
        registry = FileRegistry(ledger, mapping.name)
        ingested = registry.checksums()
        for file, day in list_source_files(mapping, settings):
            path = file.path
            if not oldest <= day <= newest:
                found.not_yet.append((path, day))
                continue
            # an object's ETag stands for its bytes (nothing downloaded); a file is hashed
            stamp = file.etag.strip('"') if file.etag else file_sha256(path)[0]
            key = f"{mapping.name}:{path}"
            if found.seen.get(key) == stamp:
                continue
            found.seen[key] = stamp
            if path in ingested and _checksum(registry, file, stamp) in ingested[path]:
                continue
            found.runs.setdefault((mapping.name, day), []).append(f"{file.name}@{stamp[:16]}")
    for files in found.runs.values():
        files.sort()
    return found


def _checksum(registry: FileRegistry, file: SourceFile, stamp: str) -> str:
    """The file's checksum: ``stamp`` for a local file; an object's as the registry recorded
    it at this ETag, else its bytes hashed (streamed) once."""
    if file.etag is None:
        return stamp
    return registry.checksum_of(file.path, file.etag, file.size) or file_sha256(file.path)[0]
