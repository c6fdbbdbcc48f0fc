"""Which source files were ingested, by checksum, in the ledger's ``ingested_files``.

A file is read once: a rerun of the same partition reads again the files recorded for
that partition (reruns are idempotent, stage outputs are replaced whole); a file
already ingested under another partition is skipped; a file whose content changed
(new checksum) is read again.

A file is recorded with its ETag as listed before it was read (``source_files``: an
object's from its store, a local file's size and mtime): a file whose ETag and size the
registry holds has the checksum recorded with them, so knowing it costs no hash, nor for an
object a download (a new ETag is hashed once: the same bytes written again are still known,
and :meth:`FileRegistry.restamp` records the new ETag).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update

from connector.ledger import IngestedFile, Ledger
from connector.sources.source_files import SourceFile, open_raw

log = logging.getLogger(__name__)

HASH_BLOCK = 4 * 1024 * 1024


def file_sha256(path: str | Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a file (or object, streamed), read in blocks."""
    digest = hashlib.sha256()
    size = _hash_from(path, 0, digest)
    return digest.hexdigest(), size


def _hash_from(path: str | Path, offset: int, digest: Any) -> int:
    """Feed ``digest`` the file's bytes from ``offset`` to its end; the file's size."""
    size = 0
    with io.BufferedReader(open_raw(str(path)), buffer_size=HASH_BLOCK) as fh:
        if isinstance(fh.raw, io.FileIO):
            size = fh.seek(offset)
        while size < offset and (skipped := fh.read(min(HASH_BLOCK, offset - size))):
            size += len(skipped)  # a stream cannot seek: the bytes before are read past
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return size


class ReadOnce(io.RawIOBase):
    """A source file read from start to end, as a raw stream (``io.BufferedReader`` wraps it):
    a local file, or an object streamed from its store (``source_files.open_raw``).

    The base of :class:`ChecksumWhileReading`, which needs to see every byte read; a plain
    reading of the file otherwise.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self._file = open_raw(str(path))
        self._read = 0
        self._at_end = False  # a read found the end: every byte went through readinto

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        got = self._file.readinto(buffer) or 0
        self._read += got
        if not got and len(buffer):
            self._at_end = True
        return got

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        super().close()


class ChecksumWhileReading(ReadOnce):
    """A source file read once that hashes its bytes as they are read (sha256).

    The reader parses the bytes this checksum covers, so the file is read once instead of
    twice (once to hash, once to parse). :meth:`result` adds the bytes not read (a read that
    stopped early: an object is then streamed again past them), so it is always the whole
    file's :func:`file_sha256`, also after the file was closed.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.path = path
        self._digest = hashlib.sha256()

    def readinto(self, buffer: Any) -> int:
        got = super().readinto(buffer)
        if got:
            with memoryview(buffer) as view:
                self._digest.update(view[:got])
        return got

    def result(self) -> tuple[str, int]:
        """(sha256 hex, size in bytes) of the whole file."""
        if self._at_end:  # nothing left to add (an object is not downloaded again)
            return self._digest.hexdigest(), self._read
        digest = self._digest.copy()
        size = _hash_from(self.path, self._read, digest)
        return digest.hexdigest(), size


@dataclass(frozen=True)
class Decision:
    read: bool
    reason: str  # new | changed | rerun | ingested under <partition>


class Recorded(NamedTuple):
    """One checksum a path was ingested at, and the size and ETag it was last listed at with
    it (a tuple: the POS sensor reads one per file ingested)."""

    sha256: str
    size: int
    etag: str | None  # None: a local file recorded before local files had one

    def lists_as(self, listed: SourceFile) -> bool:
        """Whether ``listed`` is this file as it was recorded (same size and ETag)."""
        return self.etag is not None and (self.size, self.etag) == (listed.size, listed.etag)


def recorded_files(ledger: Ledger, mappings: Sequence[str]) -> dict[str, dict[str, list[Recorded]]]:
    """Per mapping, every path (or object URL) ingested so far with the checksums it was
    ingested at and the size and ETag last listed with each: one query on a plain connection
    for all the ``mappings`` (what the POS sensor compares listings with, a row per file)."""
    if not mappings:
        return {}
    query = select(
        IngestedFile.mapping,
        IngestedFile.path,
        IngestedFile.sha256,
        IngestedFile.size,
        IngestedFile.etag,
    ).where(IngestedFile.mapping.in_(sorted(set(mappings))))
    with ledger.engine.connect() as conn:
        rows = conn.execute(query).all()
    known: dict[str, dict[str, list[Recorded]]] = {}
    for mapping, path, sha256, size, etag in rows:
        known.setdefault(mapping, {}).setdefault(path, []).append(Recorded(sha256, size, etag))
    return known


class FileRegistry:
    """The ``IngestedFile`` rows of one mapping."""

    def __init__(self, ledger: Ledger, mapping: str) -> None:
        self.ledger = ledger
        self.mapping = mapping

    def decide(self, path: str, sha256: str, partition: str) -> Decision:
        """Whether ``path`` with this content is to be read for ``partition``."""
        with self.ledger.session() as session:
            rows = session.scalars(
                select(IngestedFile).where(
                    IngestedFile.mapping == self.mapping, IngestedFile.path == path
                )
            ).all()
        same = [r for r in rows if r.sha256 == sha256]
        if not same:
            return Decision(True, "changed" if rows else "new")
        if any(r.partition == partition for r in same):
            return Decision(True, "rerun")
        return Decision(False, f"ingested under {same[0].partition}")

    def checksum_of(self, path: str, etag: str, size: int) -> str | None:
        """The checksum recorded for the file (or object) ``path`` at this ETag and size;
        None when it was never ingested so."""
        with self.ledger.session() as session:
            return session.scalars(
                select(IngestedFile.sha256).where(
                    IngestedFile.mapping == self.mapping,
                    IngestedFile.path == path,
                    IngestedFile.etag == etag,
                    IngestedFile.size == size,
                )
            ).first()

    def record(
        self,
        path: str,
        sha256: str,
        size: int,
        partition: str,
        rows: int,
        etag: str | None = None,
    ) -> None:
        """Remember that ``path`` with this content, listed at ``etag`` before it was read,
        was read for ``partition``."""
        # read-then-write: take SQLite's write lock first, or a concurrent writer (another
        # process preparing a partition) makes the upgrade fail at once with "database is
        # locked" (SQLITE_BUSY_SNAPSHOT ignores the busy timeout)
        with self.ledger.session(immediate=True) as session:
            found = session.scalars(
                select(IngestedFile).where(
                    IngestedFile.mapping == self.mapping,
                    IngestedFile.path == path,
                    IngestedFile.sha256 == sha256,
                )
            ).first()
            if found is None:
                session.add(
                    IngestedFile(
                        mapping=self.mapping,
                        path=path,
                        sha256=sha256,
                        size=size,
                        partition=partition,
                        rows=rows,
                        etag=etag,
                    )
                )
            else:
                found.partition = partition
                found.rows = rows
                found.size = size
                found.etag = etag or found.etag
        log.debug("recorded %s (%s rows) for %s/%s", path, rows, self.mapping, partition)

    def recorded(self) -> dict[str, list[Recorded]]:
        """Every path (or object URL) of this mapping ingested so far, with the checksums it
        was ingested at and the size and ETag last listed with each."""
        return recorded_files(self.ledger, [self.mapping]).get(self.mapping, {})

    def restamp(self, hashed: Sequence[tuple[SourceFile, str]]) -> None:
        """Record the size and ETag each file was listed at when it was found to hold bytes
        already ingested (the file, its checksum): a file touched, or written again with the
        same bytes, is not hashed again."""
        if not hashed:
            return
        statement = (
            update(IngestedFile)
            .where(
                IngestedFile.mapping == self.mapping,
                IngestedFile.path == bindparam("at_path"),
                IngestedFile.sha256 == bindparam("at_sha"),
            )
            .values(size=bindparam("new_size"), etag=bindparam("new_etag"))
        )
        params = [
            {"at_path": f.path, "at_sha": sha, "new_size": f.size, "new_etag": f.etag}
            for f, sha in hashed
        ]
        with self.ledger.session(immediate=True) as session:
            session.connection().execute(statement, params)

    def files(self, partition: str | None = None) -> list[IngestedFile]:
        """Recorded files of this mapping (of one partition when given)."""
        query = select(IngestedFile).where(IngestedFile.mapping == self.mapping)
        if partition is not None:
            query = query.where(IngestedFile.partition == partition)
        with self.ledger.session() as session:
            return list(session.scalars(query.order_by(IngestedFile.path)).all())
