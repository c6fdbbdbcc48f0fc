"""DirectFile: the bytes given, in order, whatever their sizes, with or without O_DIRECT."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector import directio
from connector.directio import ALIGN, DirectFile

SMALL = 2 * ALIGN  # a small buffer: flushes, whole buffers and tails all happen


def _flags(fd: int) -> int:
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    raise AssertionError("no flags in fdinfo")


def _direct(path: Path) -> DirectFile:
    """A DirectFile that really has O_DIRECT (else the test is skipped, with the reason)."""
    f = DirectFile(path, buffer_bytes=SMALL)
    if not f.direct:  # pragma: no cover - a file system without O_DIRECT under tmp_path
        f.close()
        pytest.skip("the file system under tmp_path refuses O_DIRECT")
    return f


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 3 * SMALL + 17), max_size=12),
    st.booleans(),
)
def test_the_file_holds_exactly_what_was_written(tmp_path_factory, sizes, direct) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("d") / "f.batch"
    chunks = [os.urandom(n) for n in sizes]
    f = DirectFile(path, buffer_bytes=SMALL, direct=direct)
    for i, chunk in enumerate(chunks):
        # bytes, and memoryviews over a larger buffer (as the batch writer passes)
        f.write(chunk if i % 2 else memoryview(b"x" + chunk + b"y")[1:-1])
    f.close()
    assert path.read_bytes() == b"".join(chunks)
    assert f.size == sum(sizes) == path.stat().st_size


@pytest.mark.skipif(not directio.O_DIRECT, reason="this platform has no O_DIRECT")
def test_the_descriptor_really_bypasses_the_page_cache(tmp_path: Path) -> None:
    f = DirectFile(tmp_path / "f.batch")
    try:
        if f.direct:  # the file system took O_DIRECT: the open descriptor carries it
            assert _flags(f._fd) & directio.O_DIRECT
        else:  # pragma: no cover - a file system without O_DIRECT under tmp_path
            assert not _flags(f._fd) & directio.O_DIRECT
    finally:
        f.close()
    plain = DirectFile(tmp_path / "g.batch", direct=False)
    try:
        assert not plain.direct and not _flags(plain._fd) & directio.O_DIRECT
    finally:
        plain.close()


def test_a_file_system_that_refuses_o_direct_gets_a_plain_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Such a file system cannot be mounted here: its EINVAL on open is injected."""
    real_open = os.open

    def refusing(path, flags, mode=0o777):  # type: ignore[no-untyped-def]
        if flags & directio.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(directio, "O_DIRECT", directio.O_DIRECT or 0o40000)
    monkeypatch.setattr(directio.os, "open", refusing)
    f = DirectFile(tmp_path / "f.batch")
    f.write(b"abc" * 5000)
    f.close()
    assert not f.direct
    assert (tmp_path / "f.batch").read_bytes() == b"abc" * 5000


@pytest.mark.skipif(not directio.O_DIRECT, reason="this platform has no O_DIRECT")
def test_a_device_that_refuses_the_direct_write_gets_the_bytes_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device whose logical blocks are larger than 4096 bytes refuses the first write
    with EINVAL (none here: the refusal is injected, while the descriptor has O_DIRECT)."""
    real_write = os.write
    refused = []

    def refusing(fd, data):  # type: ignore[no-untyped-def]
        if _flags(fd) & directio.O_DIRECT:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    path = tmp_path / "f.batch"
    f = _direct(path)
    monkeypatch.setattr(directio.os, "write", refusing)
    data = os.urandom(2 * SMALL + 11)
    f.write(data)
    f.close()
    assert refused == [SMALL] and not f.direct
    assert path.read_bytes() == data


def test_other_write_errors_are_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd, data):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    f = DirectFile(tmp_path / "f.batch", buffer_bytes=SMALL)
    monkeypatch.setattr(directio.os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        f.write(b"x" * (SMALL + 1))
    f.abort()


def test_other_open_errors_are_raised(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        DirectFile(tmp_path / "missing-dir" / "f.batch")


@pytest.mark.skipif(not directio.O_DIRECT, reason="this platform has no O_DIRECT")
def test_a_short_write_at_an_unaligned_offset_goes_on_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short write (a full disk can cause one) cannot be had on demand: it is injected
    once, leaving the file at an unaligned offset, which O_DIRECT would refuse next."""
    real_write = os.write
    calls = []

    def short_once(fd, data):  # type: ignore[no-untyped-def]
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: ALIGN + 100]))  # buffered: any length
        return real_write(fd, data)

    path = tmp_path / "f.batch"
    f = _direct(path)
    flags = _flags(f._fd)
    # the injected short write has to be written without O_DIRECT to stop unaligned
    import fcntl

    fcntl.fcntl(f._fd, fcntl.F_SETFL, flags & ~directio.O_DIRECT)
    monkeypatch.setattr(directio.os, "write", short_once)
    data = os.urandom(3 * SMALL + 5)
    more = os.urandom(SMALL // 2)  # written after it, in a second call
    f.write(data)
    f.write(more)
    f.close()
    data += more
    assert path.read_bytes() == data
    assert not f.direct  # it went on without O_DIRECT after the short write
    assert calls[0] == SMALL and len(calls) >= 3


def test_abort_writes_nothing_more_and_the_buffer_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directio, "_spare", [])  # none left by other tests in this process

    def spares() -> int:
        return sum(len(b) == SMALL for b in directio._spare)

    f = DirectFile(tmp_path / "f.batch", buffer_bytes=SMALL)
    f.write(b"z" * 100)  # held in the buffer
    before = spares()
    f.abort()
    assert (tmp_path / "f.batch").read_bytes() == b""
    f.abort()  # twice is harmless, as close after abort
    f.close()
    if f.direct:  # its buffer is kept for the next file, which takes it
        assert spares() == min(before + 1, directio.SPARE_MAX)
        g = DirectFile(tmp_path / "g.batch", buffer_bytes=SMALL)
        assert spares() == min(before + 1, directio.SPARE_MAX) - 1
        g.write(b"q" * 10)  # the last file's bytes are not in it
        g.close()
        assert (tmp_path / "g.batch").read_bytes() == b"q" * 10


def test_a_buffer_size_that_is_not_aligned_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of 4096"):
        DirectFile(tmp_path / "f.batch", buffer_bytes=ALIGN + 1)


def test_a_failed_write_is_raised_not_hidden_when_no_buffer_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed write's traceback still holds a slice of the buffer; with no room among
    the spares the buffer cannot be unmapped then, and that must not replace the error."""
    monkeypatch.setattr(directio, "SPARE_MAX", 0)

    def full(fd, data):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    f = _direct(tmp_path / "f.batch")
    monkeypatch.setattr(directio.os, "write", full)
    f.write(b"x" * 100)
    with pytest.raises(OSError, match="No space left"):
        f.close()
    assert f._fd < 0  # closed all the same
