"""One batch of the outbox as a destination reads it: the file, its manifest, its rows.

The outbox package owns the batch and manifest formats: ``connector.outbox.writer`` writes them,
``connector.outbox.manifests`` decodes chosen lines, and this module is what the rest of the
connector reads a batch through (a destination submits the file or its rows; delivery reads
the manifest). Nothing else parses a batch file.

A batch's ``path`` and ``manifest_path`` are URLs in the outbox (``connector.storage``): a
local path, or an object in a store that any machine of the deployment reads. The batch file
is streamed from there; a manifest is read through a copy in the cache folder, removed after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from connector import storage
from connector.outbox import manifests


class BatchFileMissing(RuntimeError):
    """A batch the ledger holds whose file (or manifest) is not in the outbox: the run stops
    and names it, the batch stays queued, because its rows would otherwise be lost quietly
    (the outbox on another machine's disk, a bucket emptied by a lifecycle rule)."""

    def __init__(self, batch_id: int, batch_key: str, url: str) -> None:
        self.batch_id = batch_id
        self.url = url
        super().__init__(
            f"batch {batch_id} ({batch_key}): its file {url} is not in the outbox; the batch "
            "stays queued. Point CONNECTOR_OUTBOX_URL at the outbox every process shares "
            "(an object store when runs do not share a disk), or restore the file"
        )


@dataclass(frozen=True)
class OutboxFile:
    """A batch file as the ledger names it (``Batch``): what a destination needs to send it."""

    batch_id: int
    path: str  # the batch file's URL (or local path)
    manifest_path: str
    identity_type: str  # pcId | thirdPartyId | the Copernica match field
    row_count: int
    cache_dir: Path | None = None  # where a manifest is copied to be read (None: the temp dir)

    @classmethod
    def of(cls, batch: Any, cache_dir: Path | None = None) -> OutboxFile:
        """The file of a ``ledger.Batch``; manifests are read through ``cache_dir``."""
        return cls(
            batch_id=int(batch.id),
            path=str(batch.path),
            manifest_path=str(batch.manifest_path),
            identity_type=str(batch.identity_type),
            row_count=int(batch.row_count),
            cache_dir=cache_dir,
        )

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def size(self) -> int:
        """The batch file's size in bytes (``storage.ObjectMissing`` when it is not there)."""
        return storage.head(self.path).size

    def open(self) -> Iterator[bytes]:
        """The batch file's bytes, streamed (opened now: ``storage.ObjectMissing`` here)."""
        return storage.open_stream(self.path)

    def manifest(self) -> pa.Table:
        """The manifest's rows (no values: :meth:`with_values` adds them)."""
        return manifests.read(self.manifest_path, self.cache_dir)

    def with_values(self, rows: pa.Table) -> pa.Table:
        """Manifest ``rows`` with their param values, decoded from the file."""
        return manifests.with_values(self.path, rows)

    def param_names(self) -> list[str]:
        return manifests.param_names(self.manifest())

    def rows(self) -> Iterator[tuple[str, dict[str, str]]]:
        """Each line's identity and non-empty values (a Copernica JSON-lines file), streamed.

        The file is opened now, so a missing one raises ``storage.ObjectMissing`` here.
        """
        return _json_rows(storage.open_stream(self.path))


def _json_rows(chunks: Iterator[bytes]) -> Iterator[tuple[str, dict[str, str]]]:
    for line in _lines(chunks):
        if line.strip():
            doc = json.loads(line)
            yield str(doc["identity"]), {k: str(v) for k, v in doc["fields"].items()}


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The ``\n``-separated lines of a byte stream (the last one without its end too)."""
    rest = b""
    for chunk in chunks:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest
