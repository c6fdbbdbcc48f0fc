"""Which source files were ingested, by checksum, in the ledger's ``ingested_files``.

A file is read once: a rerun of the same partition reads again the files recorded for
that partition (reruns are idempotent, stage outputs are replaced whole); a file
already ingested under another partition is skipped; a file whose content changed
(new checksum) is read again.

An object (a POS export in an object store) is recorded with its ETag too: an object whose
ETag and size the registry holds has the checksum recorded with them, so knowing it costs
no download (a new ETag is hashed once: the same bytes uploaded again are still known).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connector.ledger import IngestedFile, Ledger
from connector.sources.source_files import open_raw

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
        """The checksum recorded for the object ``path`` at this ETag and size; None when
        it was never ingested so."""
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
        """Remember that ``path`` with this content (an object's: at this ETag) was read for
        ``partition``."""
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

    def checksums(self) -> dict[str, set[str]]:
        """Every path (or object URL) of this mapping ingested so far, with the checksums it
        was ingested at."""
        with self.ledger.session() as session:
            rows = session.execute(
                select(IngestedFile.path, IngestedFile.sha256).where(
                    IngestedFile.mapping == self.mapping
                )
            ).all()
        known: dict[str, set[str]] = {}
        for path, sha256 in rows:
            known.setdefault(path, set()).add(sha256)
        return known

    def files(self, partition: str | None = None) -> list[IngestedFile]:
        """Recorded files of this mapping (of one partition when given)."""
        query = select(IngestedFile).where(IngestedFile.mapping == self.mapping)
        if partition is not None:
            query = query.where(IngestedFile.partition == partition)
        with self.ledger.session() as session:
            return list(session.scalars(query.order_by(IngestedFile.path)).all())
