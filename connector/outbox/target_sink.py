"""Target batch files: ``batch=`` + header, then ``\\n`` + one URL-encoded line per profile.

Rows are cut into files under the row cap (``max_rows``) and strictly under the byte cap
(``max_bytes``). A profile whose line alone cannot fit in any file is refused
(:class:`ProfileTooLarge`). Each file's manifest rows are written beside its lines.

The next record batch's lines are encoded (``connector.encoding``, on the ``encoders``
pool, in pieces so that both threads work on one batch) while the current one is written,
and the batch after it is read meanwhile: three stages overlap, memory stays bounded by a
few record batches.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from connector.buffers import value_offsets
from connector.columns import IDENTITY
from connector.encoding import encode_lines
from connector.outbox.pending import FinishedFile, PendingFile
from connector.threads import prefetched

# rows encoded per task: a record batch cut in pieces lets both encoding threads work on it
ENCODE_PIECE_ROWS = 25_000
ENCODE_THREADS = 2


class ProfileTooLarge(ValueError):
    """A single profile line cannot fit in any batch file under the byte cap."""


class TargetSink:
    """Batch files of one mapping's rows for the Target Bulk Profile Update API."""

    def __init__(
        self,
        outbox: Path,
        *,
        header: str,
        max_rows: int,
        max_bytes: int,
        names: Sequence[str],
        encoders: ThreadPoolExecutor,
        writer: ThreadPoolExecutor,
    ) -> None:
        self.writer = writer
        self.encoders = encoders
        self.outbox = outbox
        self.header = header.encode()
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.names = list(names)
        if len(self.header) >= max_bytes:
            raise ProfileTooLarge(
                f"the header alone ({len(self.header)} bytes) reaches the byte cap {max_bytes}"
            )

    def files(self, batches: Iterable[pa.RecordBatch]) -> Generator[FinishedFile, None, None]:
        """The finished files, one at a time; closing the generator aborts the open one."""
        current: PendingFile | None = None
        ahead = prefetched(iter(batches), name="batch-read")
        encoded = prefetched(((self._encode(rb), rb) for rb in ahead), name="batch-encode")
        try:
            for lines, rb in _line_chunks(encoded):
                offsets = value_offsets(lines)
                lengths = np.diff(offsets)
                i, n = 0, len(lines)
                while i < n:
                    if current is None:
                        current = PendingFile(self.outbox, ".batch", self.names, self.writer)
                        current.write(self.header)
                    room_rows = self.max_rows - current.rows
                    room_bytes = self.max_bytes - current.size  # file must stay < max_bytes
                    cum = np.cumsum(lengths[i : i + room_rows])
                    fit = int(np.searchsorted(cum, room_bytes, side="left"))
                    if fit == 0:
                        if current.rows == 0:
                            identity = rb.column(0)[i].as_py()
                            raise ProfileTooLarge(
                                f"profile {identity!r} needs {int(lengths[i])} bytes: "
                                f"no batch file under {self.max_bytes} bytes can hold it"
                            )
                        yield current.finish()
                        current = None
                        continue
                    current.write(_buffer_slice(lines, offsets, i, i + fit))
                    current.write_manifest(rb.slice(i, fit))
                    i += fit
                    if current.rows >= self.max_rows:
                        yield current.finish()
                        current = None
            if current is not None and current.rows:
                yield current.finish()
                current = None
        finally:
            # joins the encoding thread (it uses the encoders the caller shuts down next),
            # then the reading thread (it uses the DuckDB connection the caller closes next)
            encoded.close()
            ahead.close()
            if current is not None:
                current.abort()

    def _encode(self, rb: pa.RecordBatch) -> pa.ChunkedArray:
        # pieces of equal size, at least one per encoding thread, so that none waits for
        # another at the end of a batch
        count = max(ENCODE_THREADS, -(-rb.num_rows // ENCODE_PIECE_ROWS))
        size = max(1, -(-rb.num_rows // count))
        pieces = [rb.slice(i, size) for i in range(0, rb.num_rows, size)]
        return encode_lines(
            pa.Table.from_batches(pieces, rb.schema),
            [IDENTITY, *self.names],
            executor=self.encoders,
        )


def _buffer_slice(lines: pa.Array, offsets: np.ndarray, start: int, stop: int) -> memoryview:
    """The bytes of ``lines[start:stop]`` straight from the array's data buffer (no copy)."""
    data = lines.buffers()[2]
    if data is None:
        return memoryview(b"")
    return memoryview(data)[offsets[start] : offsets[stop]]


def _line_chunks(
    encoded: Iterable[tuple[pa.ChunkedArray, pa.RecordBatch]],
) -> Iterator[tuple[pa.Array, pa.RecordBatch]]:
    """Each encoded chunk of lines (written from its own buffer, no copy) with the slice of
    the record batch whose rows it encodes."""
    for chunks, batch in encoded:
        start = 0
        for lines in chunks.chunks:
            yield lines, batch.slice(start, len(lines))
            start += len(lines)
