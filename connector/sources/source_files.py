"""The files a CSV source's ``path`` names, on this machine's disk or in an object store.

``path: sample_exports/pos/*.csv`` is a glob over folders; ``path: s3://bucket/pos/pos_*.csv``
(or ``gs://``, ``az://``) is the same glob over the objects of a bucket
(``connector.sources.object_glob``), listed through ``connector.storage`` with each
object's size, ETag and time of upload. Either way a file is named by its path or URL (in
source refs ``path:LINE``, in the file registry) and read as a stream of bytes
(:func:`open_raw`): an object is streamed as it is read, never copied to the local disk.

A listing reads metadata only. Every file has an ETag, the store's word for "these bytes":
an object's from its store, a local file's its size and mtime in nanoseconds
(``storage.local_etag``). A file listed at the (size, ETag) it was hashed at is taken to
hold the same bytes, so the POS sensor hashes only files listed otherwise
(``connector.sources.arrivals``). A local rewrite that keeps both the size and the mtime (a
tool that sets the mtime back) is not seen until the file changes again.

The POS sensor lists every export of every csv mapping on each tick (73,000 files for 200
mappings with a year of daily exports), so a local listing costs one ``stat`` per file and
little Python: a folder is read with ``os.scandir`` when only the file name holds wildcards
(the usual ``exports/pos_*.csv``), through ``glob`` otherwise.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import glob
import io
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from connector.sources.object_glob import ObjectGlob
from connector.storage import (
    Location,
    ObjectMissing,
    StorageError,
    is_object_url,
    local_etag,
    open_stream,
)

CSV_SUFFIXES = (".csv", ".csv.gz")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def is_csv_name(name: str) -> bool:
    """Whether a file name is a CSV export's (``.csv`` or ``.csv.gz``, any case)."""
    return name.lower().endswith(CSV_SUFFIXES)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file the glob matched: its path (or object URL), size, modification time and ETag
    (which changes whenever its bytes are written again; None only where a store gives
    none)."""

    path: str
    size: int
    modified_ns: int  # last modified (an object's upload), in ns since the epoch
    etag: str | None = None

    @property
    def mtime(self) -> dt.datetime:
        """When it was last modified (an object: uploaded), aware, UTC."""
        return EPOCH + dt.timedelta(microseconds=self.modified_ns // 1000)

    @property
    def name(self) -> str:
        """The file name (the last part of the path or key): what ``date_pattern`` reads."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_object(self) -> bool:
        return is_object_url(self.path)


def list_files(pattern: str) -> list[SourceFile]:
    """The CSV files (``.csv``, ``.csv.gz``) the glob ``pattern`` matches, by path: a local
    glob (``**`` spans folders; names starting with a dot only when the pattern's do), or an
    object-store URL whose keys are matched the same way."""
    if is_object_url(pattern):
        matcher = ObjectGlob(pattern)
        listed = Location.parse(matcher.prefix).list()
        return sorted(
            (
                SourceFile(info.url, info.size, _ns_since_epoch(info.mtime), info.etag)
                for info in listed
                if is_csv_name(info.url) and matcher.matches(info.url)
            ),
            key=_path,
        )
    folder, name = os.path.split(pattern)
    if glob.has_magic(folder) or not glob.has_magic(name) or "**" in name:
        found = (local_file(path) for path in glob.glob(pattern, recursive=True))
        return sorted((f for f in found if f is not None and is_csv_name(f.path)), key=_path)
    return sorted(_scan(folder, name), key=_path)


def local_file(path: str) -> SourceFile | None:
    """The local file ``path`` as listed (one ``stat``); None when it is not a regular file
    (any more)."""
    try:
        info = os.stat(path)
    except OSError:  # gone since the glob saw it, or unreadable
        return None
    return _listed(path, info) if stat.S_ISREG(info.st_mode) else None


def _scan(folder: str, name: str) -> list[SourceFile]:
    """The regular CSV files of ``folder`` whose name matches the wildcard ``name``."""
    matches = re.compile(fnmatch.translate(name)).match
    dot_files = name.startswith(".")
    found: list[SourceFile] = []
    try:
        entries = os.scandir(folder or ".")
    except OSError:  # no such folder (yet), as glob: nothing listed
        return found
    with entries:
        for entry in entries:
            entry_name = entry.name
            if (entry_name.startswith(".") and not dot_files) or not matches(entry_name):
                continue
            if not is_csv_name(entry_name):
                continue
            try:
                info = entry.stat()
            except OSError:  # gone since the folder was read
                continue
            if stat.S_ISREG(info.st_mode):
                # entry.path is folder/name, as glob gives it (just the name in the cwd)
                found.append(_listed(entry.path if folder else entry_name, info))
    return found


def _listed(path: str, info: os.stat_result) -> SourceFile:
    return SourceFile(path, info.st_size, info.st_mtime_ns, local_etag(info))


def _ns_since_epoch(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(microseconds=1) * 1000


_path = attrgetter("path")


def open_raw(path: str) -> io.RawIOBase:
    """The file's bytes as a raw stream: a local file, or an object streamed as it is read.

    An object's failures are ``OSError``s naming its URL (``FileNotFoundError`` when it is
    gone), so a reader handles them as it handles a file's."""
    if not is_object_url(path):
        return io.FileIO(path, "rb")
    return ObjectReader(path)


class ObjectReader(io.RawIOBase):
    """An object's bytes as a raw stream, fetched in chunks as they are read."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        try:
            self._chunks: Iterator[bytes] = open_stream(url)
        except ObjectMissing as exc:
            raise FileNotFoundError(str(exc)) from exc
        except StorageError as exc:
            raise OSError(str(exc)) from exc
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                chunk = next(self._chunks, None)
            except StorageError as exc:
                raise OSError(str(exc)) from exc
            if chunk is None:
                return 0
            self._left = memoryview(chunk)
        target = memoryview(buffer).cast("B")
        size = min(len(target), len(self._left))
        target[:size] = self._left[:size]
        self._left = self._left[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()  # the generator lets go of the response
            self._left = memoryview(b"")
        super().close()
