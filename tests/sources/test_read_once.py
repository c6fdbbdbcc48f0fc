"""Source files read once leave the page cache behind the reader (``registry.ReadOnce``)."""

from __future__ import annotations

import ctypes
import hashlib
import io
import mmap
import os
import sys
from pathlib import Path

import pytest

from connector.sources.csv import read_csv_file
from connector.sources.registry import DROP_EVERY, ChecksumWhileReading, ReadOnce

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="page-cache residency is read with Linux mincore"
)


def _resident_pages(path: Path) -> int:
    """How many of the file's pages are in the page cache (``mincore`` on a mapping of it).

    A private mapping (copy on write) is writable for ctypes to take its address; pages not
    written to are the page cache's own, so mincore reports the file's residency.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    vec = (ctypes.c_ubyte * pages)()
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
        first = ctypes.c_char.from_buffer(mapped)
        try:
            if libc.mincore(ctypes.c_void_p(ctypes.addressof(first)), ctypes.c_size_t(size), vec):
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            del first  # the mapping can close only once nothing exports it
    return sum(v & 1 for v in vec)


def _cache(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 20):
            pass


def _cached_file(tmp_path: Path, data: bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())  # clean pages: only those can be dropped
    # a file system whose pages are memory (tmpfs, where /tmp often is) cannot drop them
    with open(path, "rb") as fh:
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    if _resident_pages(path):
        pytest.skip(f"{tmp_path}: this file system keeps file pages in memory (tmpfs?)")
    _cache(path)  # and now all of them in the page cache
    return path


@linux_only
def test_pages_read_are_dropped_behind_the_reader(tmp_path: Path) -> None:
    data = os.urandom(3 * DROP_EVERY + 12345)
    path = _cached_file(tmp_path, data)
    pages = -(-len(data) // mmap.PAGESIZE)
    assert _resident_pages(path) > pages * 0.9  # the precondition: the file is cached

    with io.BufferedReader(ReadOnce(path), buffer_size=1 << 20) as reader:
        first = reader.read(2 * DROP_EVERY)
        # what was read is gone from the cache; what was not read yet is still there
        resident = _resident_pages(path)
        assert resident < pages - (DROP_EVERY // mmap.PAGESIZE)
        assert resident > 0
        rest = reader.read()
    assert first + rest == data  # every byte read, in order
    assert _resident_pages(path) < pages * 0.05


@linux_only
def test_checksum_while_reading_drops_and_still_hashes_the_whole_file(tmp_path: Path) -> None:
    data = os.urandom(2 * DROP_EVERY + 99)
    path = _cached_file(tmp_path, data)
    checksum = ChecksumWhileReading(path)
    with io.BufferedReader(checksum) as reader:
        reader.read(DROP_EVERY + 7)  # a read that stops early: the rest is hashed apart
    assert checksum.result() == (hashlib.sha256(data).hexdigest(), len(data))
    assert _resident_pages(path) < -(-len(data) // mmap.PAGESIZE)


@linux_only
def test_csv_export_is_not_left_in_the_page_cache(tmp_path: Path) -> None:
    lines = ["customer_id,email"] + [f"C{i:08d},user{i}@example.com" for i in range(400_000)]
    path = _cached_file(tmp_path, ("\n".join(lines) + "\n").encode(), "crm.csv")
    assert _resident_pages(path) > 0
    rows = sum(t.num_rows for t, _ in read_csv_file(str(path), chunk_rows=50_000))
    assert rows == 400_000
    assert _resident_pages(path) == 0
