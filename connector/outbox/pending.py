"""A batch file and its manifest while they are written: temporary names, then durable.

Both files are written under ``.tmp-<pid>-<token>`` names in a local folder (a local
outbox itself, else the state folder's working area) with plain buffered writes.
:meth:`PendingFile.finish` closes them; :func:`sync_files` fsyncs both, so that
``connector.outbox.publish`` can publish them under their final names. A crash at any point
leaves at worst temporary files, never a partial file under a final name;
:meth:`PendingFile.abort` and ``publish.abandon`` remove the temporary files of a run that
failed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from connector.outbox.manifest_schema import manifest_rows, manifest_writer, stored_manifest_schema
from connector.storage import fsync_path

log = logging.getLogger(__name__)


@dataclass
class FinishedFile:
    """A finished temporary batch file and manifest, not yet under its final name."""

    tmp_path: Path
    tmp_manifest: Path
    suffix: str  # the batch file's extension: .batch (Target) or .jsonl (Copernica)
    sha256: str
    rows: int
    size: int


class PendingFile:
    """A batch file and its manifest being written under temporary names.

    Manifest pages are encoded on ``writer`` (one thread, so in order; pyarrow releases
    the GIL) while the caller goes on writing lines.
    """

    def __init__(
        self, outbox: Path, suffix: str, names: Sequence[str], writer: ThreadPoolExecutor
    ) -> None:
        token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.suffix = suffix
        self.tmp_path = outbox / f".tmp-{token}{suffix}"
        self.tmp_manifest = outbox / f".tmp-{token}.manifest.parquet"
        self.hash = hashlib.sha256()
        self._names = list(names)
        self.rows = 0
        self.size = 0
        self._writer = writer
        self._pending: list[Future[None]] = []
        self._file = open(self.tmp_path, "wb")  # noqa: SIM115 - closed by finish or abort
        try:
            self._manifest = manifest_writer(self.tmp_manifest, stored_manifest_schema(names))
        except BaseException:
            # e.g. ENOSPC writing the manifest's header: the caller never gets this object,
            # so nothing would abort it and both temporary files would stay in the outbox
            self._file.close()
            for path in (self.tmp_path, self.tmp_manifest):
                path.unlink(missing_ok=True)
            raise

    def write(self, data: bytes | memoryview) -> None:
        """Append bytes to the batch file (and to its sha256)."""
        self._file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def write_manifest(self, rows: pa.RecordBatch) -> None:
        """Append the manifest rows of the lines just written (in a thread, in order)."""
        self._pending.append(self._writer.submit(self._write_manifest_rows, rows))
        self.rows += rows.num_rows

    def _write_manifest_rows(self, rows: pa.RecordBatch) -> None:
        self._manifest.write_batch(manifest_rows(rows, self._names))

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def finish(self) -> FinishedFile:
        """Both files complete and closed; :func:`sync_files` makes them durable."""
        self._drain()
        self._manifest.close()
        self._file.close()
        return FinishedFile(
            self.tmp_path,
            self.tmp_manifest,
            self.suffix,
            self.hash.hexdigest(),
            self.rows,
            self.size,
        )

    def abort(self) -> None:
        """Close both files and remove them (a failed run)."""
        for closer in (self._drain, self._manifest.close, self._file.close):
            try:
                closer()
            except Exception:
                log.debug("closing a temporary batch file failed", exc_info=True)
        for path in (self.tmp_path, self.tmp_manifest):
            path.unlink(missing_ok=True)


def sync_files(done: FinishedFile) -> None:
    """A finished batch file and its manifest on disk (before either is renamed)."""
    fsync_path(done.tmp_path)
    fsync_path(done.tmp_manifest)


def remove_leftovers(folder: Path) -> int:
    """Remove the temporary files of writers that are gone (a process killed mid-write)
    from ``folder``; a live process's files stay. Returns how many were removed."""
    removed = 0
    for path in folder.glob(".tmp-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove(*paths: Path) -> None:
    """Remove files that may or may not exist."""
    for path in paths:
        path.unlink(missing_ok=True)
