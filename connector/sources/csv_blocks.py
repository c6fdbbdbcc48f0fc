"""A CSV file as a stream of blocks of whole records, in bounded memory.

The file (plain or gzip) is decoded to UTF-8 (a UTF-8 BOM skipped, a UTF-16 BOM followed,
other encodings transcoded, undecodable bytes kept as invalid UTF-8 so that they become
rejects later) and cut into blocks at record boundaries: a newline outside quotes. A block
with no boundary is cut at any newline past ``MAX_BLOCK_BYTES``; a single line longer than
that is skipped unread (``Overlong``, its start kept for the reject).
"""

from __future__ import annotations

import codecs
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from connector.sources.csv_parse import QUOTE, Buffer, count_byte
from connector.sources.registry import ChecksumWhileReading, ReadOnce

MAX_BLOCK_BYTES = 64 * 1024 * 1024  # a block with no record boundary is cut at a newline
READ_BUFFER = 1024 * 1024
UTF8_NAMES = {"utf-8", "utf8", "utf_8", "utf-8-sig", "utf_8_sig", "u8", "ascii", "us-ascii"}


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each undecodable byte becomes a lone surrogate (invalid UTF-8 later)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + b) for b in bad), exc.end


codecs.register_error("connector-mark", _mark_undecodable)


# -- byte streams ------------------------------------------------------------------------------


class Utf8Reader:
    """A file's text as UTF-8 bytes: BOM skipped, other encodings transcoded."""

    def __init__(self, raw: IO[bytes], encoding: str) -> None:
        self.raw = raw
        head = raw.read(4)
        self.encoding = encoding
        self.prefix = b""
        self.decoder: codecs.IncrementalDecoder | None = None
        if head.startswith(codecs.BOM_UTF8):
            self.prefix = head[3:]
            self.encoding = "utf-8"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding = "utf-16"
            self.decoder = codecs.getincrementaldecoder("utf-16")(errors="connector-mark")
            self.prefix = head
        elif codecs.lookup(encoding).name in {codecs.lookup(n).name for n in UTF8_NAMES}:
            self.prefix = head
        else:
            self.decoder = codecs.getincrementaldecoder(encoding)(errors="connector-mark")
            self.prefix = head

    def read(self, size: int) -> bytes:
        data = self.prefix + self.raw.read(size)
        self.prefix = b""
        if self.decoder is None:
            return data
        final = not data
        text = self.decoder.decode(data, final=final)
        out = text.encode("utf-8", "surrogatepass")
        if not out and not final:
            return self.read(size)
        return out

    def read_after(self, rest: bytes | bytearray, size: int) -> bytes | bytearray:
        """``rest`` followed by up to ``size`` more bytes; empty at the end of the file.

        UTF-8 files are read straight into one new buffer after ``rest`` (no second copy
        of the block to join them); transcoded text is joined as it comes.
        """
        if self.decoder is not None or self.prefix:
            data = self.read(size)
            return bytes(rest) + data if data else b""
        joined = bytearray(len(rest) + size)
        joined[: len(rest)] = rest
        view = memoryview(joined)
        end = len(rest)
        while end < len(joined):
            got = self.raw.readinto(view[end:])  # type: ignore[attr-defined]
            if not got:
                break
            end += got
        view.release()
        if end == len(rest):
            return b""
        del joined[end:]
        return joined


class _OwnedGzip(gzip.GzipFile):
    """A gzip stream that closes the stream it decompresses when it is closed."""

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__(fileobj=source, mode="rb")
        self._source = source

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._source.close()


def open_file(path: str, checksum: ChecksumWhileReading | None = None) -> IO[bytes]:
    """The file (or object, streamed) for reading: through ``checksum`` when given (gzip:
    the stored bytes)."""
    gz = path.lower().endswith(".gz")
    if checksum is None:
        plain = io.BufferedReader(ReadOnce(path), buffer_size=READ_BUFFER)
        if gz:
            return _OwnedGzip(plain)  # type: ignore[return-value]
        return plain
    buffered = io.BufferedReader(checksum, buffer_size=READ_BUFFER)
    if gz:
        # closing the GzipFile leaves `buffered` open: the caller closes the checksum
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def last_boundary(buf: bytes | bytearray) -> int:
    """Offset just past the last newline outside quotes (0 when none); ``buf`` starts a record."""
    pos = buf.rfind(b"\n")
    if pos < 0:
        return 0
    parity = count_byte(buf, QUOTE, pos) & 1
    while parity:
        prev = buf.rfind(b"\n", 0, pos)
        if prev < 0:
            return 0
        parity ^= buf.count(b'"', prev, pos) & 1
        pos = prev
    return pos + 1


@dataclass(frozen=True)
class Overlong:
    """A physical line longer than MAX_BLOCK_BYTES, skipped unread (only its start is kept)."""

    head: bytes


def blocks(reader: Utf8Reader, block_bytes: int) -> Iterator[Buffer | Overlong]:
    """Runs of whole records (the last one may lack its newline), or an `Overlong` marker
    in place of a line too long to hold in memory. A run may be a view of a larger buffer:
    it is parsed before the next one is read (nothing holds on to it)."""
    buf: bytes | bytearray = b""
    while True:
        joined = reader.read_after(buf, block_bytes)
        if not joined:
            if buf:
                yield buf
            return
        buf = joined
        cut = last_boundary(buf)
        if cut == 0 and len(buf) > MAX_BLOCK_BYTES:
            # unbalanced quotes (a stray `"` in an unquoted field): cut at any newline so
            # memory stays bounded; the records around the cut become rejects, not a crash
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                # one line longer than the limit: skip to its end without keeping it
                head, buf = bytes(buf[:200]), b""
                while True:
                    data = reader.read(block_bytes)
                    end = data.find(b"\n") if data else 0
                    if not data or end >= 0:
                        yield Overlong(head)
                        buf = data[end + 1 :] if data else b""
                        break
                if not data:
                    if buf:
                        yield buf
                    return
                continue
        if cut:
            yield memoryview(buf)[:cut]  # no copy of the block
            buf = bytes(buf[cut:])
