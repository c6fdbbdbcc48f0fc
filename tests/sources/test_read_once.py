"""Source files read once: a checksum taken while reading covers the whole file."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from connector.sources.registry import ChecksumWhileReading, ReadOnce

BLOCK = 8 * 1024 * 1024


def test_read_once_reads_every_byte_in_order(tmp_path: Path) -> None:
    data = os.urandom(3 * BLOCK + 12345)
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    with io.BufferedReader(ReadOnce(path), buffer_size=1 << 20) as reader:
        first = reader.read(2 * BLOCK)
        rest = reader.read()
    assert first + rest == data  # every byte read, in order


def test_checksum_while_reading_still_hashes_the_whole_file(tmp_path: Path) -> None:
    data = os.urandom(2 * BLOCK + 99)
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    checksum = ChecksumWhileReading(path)
    with io.BufferedReader(checksum) as reader:
        reader.read(BLOCK + 7)  # a read that stops early: the rest is hashed apart
    assert checksum.result() == (hashlib.sha256(data).hexdigest(), len(data))
