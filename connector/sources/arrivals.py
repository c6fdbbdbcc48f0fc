"""New or changed source files per partition day: what the POS file sensor launches.

A file is known by its checksum under ``"<mapping>:<path>"`` (the sensor's cursor), so a file
that is rewritten launches its partition again and one that is only touched does not. The
ledger's file registry counts as seen too: a file some run already ingested with this content
(a sync, the demo, a sensor of another instance) launches nothing, even on a sensor's first
tick, when its cursor is empty. A file whose day is not a partition yet (today's, or before
the first partition) is not recorded: it is seen again once its day is over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from connector.ledger import Ledger
from connector.mapping import SourceMapping
from connector.settings import Settings
from connector.sources.csv import list_source_files
from connector.sources.registry import FileRegistry, file_sha256


@dataclass
class Arrivals:
    """The partitions to run and the cursor to keep once they are requested."""

    # (mapping, day) -> the new files as `name@sha256[:16]`, sorted
    runs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)  # "<mapping>:<path>" -> sha256
    not_yet: list[tuple[Path, str]] = field(default_factory=list)  # (file, day) left for later


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
        ingested = FileRegistry(ledger, mapping.name).checksums()
        for path, day in list_source_files(mapping, settings):
            if not oldest <= day <= newest:
                found.not_yet.append((path, day))
                continue
            sha, _size = file_sha256(path)
            key = f"{mapping.name}:{path}"
            if found.seen.get(key) == sha:
                continue
            found.seen[key] = sha
            if sha in ingested.get(path, ()):
                continue
            found.runs.setdefault((mapping.name, day), []).append(f"{path.name}@{sha[:16]}")
    for files in found.runs.values():
        files.sort()
    return found
