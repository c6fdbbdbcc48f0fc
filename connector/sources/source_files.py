"""The files a CSV source's ``path`` names, on this machine's disk or in an object store.

``path: sample_exports/pos/*.csv`` is a glob over folders; ``path: s3://bucket/pos/pos_*.csv``
(or ``gs://``, ``az://``) is the same glob over the objects of a bucket
(``connector.sources.object_glob``), listed through ``connector.storage`` with each
object's size, ETag and time of upload. Either way a file is named by its path or URL (in
source refs ``path:LINE``, in the file registry) and read as a stream of bytes
(:func:`open_raw`): an object is streamed as it is read, never copied to the local disk.
"""

from __future__ import annotations

import datetime as dt
import glob
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connector.sources.object_glob import ObjectGlob
from connector.storage import Location, ObjectMissing, StorageError, is_object_url, open_stream

CSV_SUFFIXES = (".csv", ".csv.gz")


def is_csv_name(name: str) -> bool:
    """Whether a file name is a CSV export's (``.csv`` or ``.csv.gz``, any case)."""
    return name.lower().endswith(CSV_SUFFIXES)


@dataclass(frozen=True)
class SourceFile:
    """A file the glob matched: its path (or object URL), size, modification time and, for
    an object, its ETag (which changes whenever its bytes are written again)."""

    path: str
    size: int
    mtime: dt.datetime  # aware, UTC
    etag: str | None = None

    @property
    def name(self) -> str:
        """The file name (the last part of the path or key): what ``date_pattern`` reads."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_object(self) -> bool:
        return is_object_url(self.path)


def list_files(pattern: str) -> list[SourceFile]:
    """The CSV files (``.csv``, ``.csv.gz``) the glob ``pattern`` matches, by path: a local
    glob (``**`` spans folders), or an object-store URL whose keys are matched the same way."""
    if is_object_url(pattern):
        matcher = ObjectGlob(pattern)
        listed = Location.parse(matcher.prefix).list()
        return sorted(
            (
                SourceFile(info.url, info.size, info.mtime, info.etag)
                for info in listed
                if is_csv_name(info.url) and matcher.matches(info.url)
            ),
            key=lambda f: f.path,
        )
    found: list[SourceFile] = []
    for path in sorted(glob.glob(pattern, recursive=True)):
        if not is_csv_name(path):
            continue
        try:
            stat = os.stat(path)
        except OSError:  # gone since the glob saw it
            continue
        if os.path.isfile(path):
            mtime = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
            found.append(SourceFile(path, stat.st_size, mtime))
    return found


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
