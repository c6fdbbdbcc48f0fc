"""Files written once, synced, and not read again soon (batch files): past the page cache.

A buffered ``write`` copies every byte into page-cache pages the kernel allocates for the
file. On this product's VMs (whose balloon hands free pages back to the host) that costs a
host fault per fresh page: ``dd`` of 1 GiB took 3.3-4.5 s of system time buffered, against
0.2-0.4 s with ``O_DIRECT``, which moves the bytes from the process's own buffer to the disk.
A batch file is fsynced before it is published and read next by the delivery, later, so the
page cache does nothing for it here.

:class:`DirectFile` copies what it is given into one page-aligned buffer (allocated once,
reused) and writes it whole; the unaligned tail is written padded and the file cut back to
its size. Where ``O_DIRECT`` is missing (not Linux) or refused (a file system without it,
such as some tmpfs) it writes through the page cache as any file does; ``direct`` says which.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ALIGN = 4096  # offsets, lengths and buffer addresses: a multiple of any logical block size
BUFFER_BYTES = 8 * 1024 * 1024
O_DIRECT: int = getattr(os, "O_DIRECT", 0)

# buffers of closed files, kept for the next one: a fresh mapping's pages would be faulted
# in again (on these VMs, from the host) for every file
_spare: list[mmap.mmap] = []
_spare_lock = threading.Lock()
SPARE_MAX = 2


def _take_buffer(size: int) -> mmap.mmap:
    with _spare_lock:
        for i, buf in enumerate(_spare):
            if len(buf) == size:
                return _spare.pop(i)
    return mmap.mmap(-1, size)


def _give_back(buf: mmap.mmap) -> None:
    with _spare_lock:
        if len(_spare) < SPARE_MAX:
            _spare.append(buf)
            return
    # a slice of it may still be held (by the traceback of a write that failed, which the
    # caller is raising): the mapping then goes when that does; the error is the caller's
    with contextlib.suppress(BufferError):
        buf.close()


class DirectFile:
    """A new file opened for writing with ``O_DIRECT`` where it can be (see module)."""

    def __init__(self, path: Path, *, buffer_bytes: int = BUFFER_BYTES, direct: bool = True):
        if buffer_bytes <= 0 or buffer_bytes % ALIGN:
            raise ValueError(f"buffer_bytes must be a positive multiple of {ALIGN}")
        self.path = path
        self.size = 0  # bytes written by the caller (the file's size once closed)
        self._fd = -1
        self._buf: mmap.mmap | None = None
        # the buffer's bytes as numpy: copies into it release the GIL (see write)
        self._array: np.ndarray | None = None
        self._used = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        self.direct = bool(direct and O_DIRECT)
        if self.direct:
            try:
                self._fd = os.open(path, flags | O_DIRECT, 0o644)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: this file system has no O_DIRECT
                    raise
                log.debug("O_DIRECT refused for %s: writing through the page cache", path)
                self.direct = False
        if not self.direct:
            self._fd = os.open(path, flags, 0o644)
            return
        try:
            # anonymous mmap: page-aligned, as O_DIRECT needs of the memory it writes from
            self._buf = _take_buffer(buffer_bytes)
            self._array = np.frombuffer(self._buf, dtype=np.uint8)
        except BaseException:
            os.close(self._fd)
            raise

    def write(self, data: bytes | bytearray | memoryview) -> None:
        src = memoryview(data).cast("B")
        if not self.direct:
            if self._used:  # O_DIRECT given up on after a short write: what it held first
                self._flush_whole()
            self._write_all(src)
            self.size += len(src)
            return
        assert self._array is not None
        capacity = len(self._array)
        # numpy copies with the GIL released (a memoryview slice assignment holds it): the
        # batch stage's encoding thread runs meanwhile
        source = np.frombuffer(src, dtype=np.uint8)
        at = 0
        while at < len(src):
            n = min(capacity - self._used, len(src) - at)
            self._array[self._used : self._used + n] = source[at : at + n]
            self._used += n
            at += n
            if self._used == capacity:
                self._flush_whole()
        self.size += len(src)

    def _flush_whole(self) -> None:
        assert self._array is not None
        self._write_all(self._array[: self._used].data)
        self._used = 0

    def _write_all(self, data: memoryview) -> None:
        at = 0
        while at < len(data):
            try:
                written = os.write(self._fd, data[at:])
            except OSError as exc:
                if not (self.direct and exc.errno == errno.EINVAL):
                    raise
                # the device wants a larger alignment than ALIGN (or the file system takes
                # O_DIRECT on open but not on write): the same bytes through the page cache
                log.debug(
                    "O_DIRECT write refused for %s: writing through the page cache", self.path
                )
                self._buffered()
                continue
            if written <= 0:  # pragma: no cover - os.write raises rather than return 0
                raise OSError(errno.EIO, f"no progress writing {self.path}")
            at += written
            if self.direct and at < len(data) and at % ALIGN:
                # a short write left the file at an unaligned offset: the rest goes through
                # the page cache (O_DIRECT would refuse it)
                self._buffered()

    def _buffered(self) -> None:
        import fcntl

        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~O_DIRECT)
        self.direct = False

    def close(self) -> None:
        """Write what is buffered and close (the caller fsyncs, as for any file)."""
        if self._fd < 0:
            return
        try:
            if self._used and not self.direct:  # O_DIRECT was given up on after a short write
                self._flush_whole()
            elif self._used:
                assert self._array is not None
                tail = self._used
                padded = -(-tail // ALIGN) * ALIGN
                self._array[tail:padded] = 0
                self._used = padded
                self._flush_whole()
                os.ftruncate(self._fd, self.size)  # the padding cut off again
        finally:
            self._release()

    def abort(self) -> None:
        """Close without writing what is buffered (the caller removes the file)."""
        self._release()

    def _release(self) -> None:
        fd, self._fd = self._fd, -1
        self._array = None  # its export of the buffer goes, so that the buffer can close
        if self._buf is not None:
            _give_back(self._buf)
            self._buf = None
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> DirectFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.abort()
