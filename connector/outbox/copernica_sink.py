"""Copernica batch files: one JSON object a line, ``{"identity": ..., "fields": {...}}``.

Empty values are omitted from ``fields`` (an empty value never clears a stored one). Files
hold at most ``max_rows`` lines; each file's manifest rows are written beside its lines.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from connector.columns import IDENTITY
from connector.outbox.pending import FinishedFile, PendingFile

COPERNICA_ROWS_PER_FILE = 1_000


class CopernicaSink:
    """Batch files of one mapping's rows for the Copernica REST API's bulk edit."""

    def __init__(
        self, outbox: Path, *, max_rows: int, names: Sequence[str], writer: ThreadPoolExecutor
    ) -> None:
        self.writer = writer
        self.outbox = outbox
        self.max_rows = max_rows
        self.names = list(names)

    def files(self, batches: Iterable[pa.RecordBatch]) -> Generator[FinishedFile, None, None]:
        """The finished files, one at a time; closing the generator aborts the open one."""
        current: PendingFile | None = None
        try:
            for rb in batches:
                i, n = 0, rb.num_rows
                while i < n:
                    if current is None:
                        current = PendingFile(self.outbox, ".jsonl", self.names, self.writer)
                    take = min(self.max_rows - current.rows, n - i)
                    part = rb.slice(i, take)
                    current.write(self._lines(part))
                    current.write_manifest(part)
                    i += take
                    if current.rows >= self.max_rows:
                        yield current.finish()
                        current = None
            if current is not None and current.rows:
                yield current.finish()
                current = None
        finally:
            if current is not None:
                current.abort()

    def _lines(self, part: pa.RecordBatch) -> bytes:
        data = part.to_pydict()
        out = []
        for r, identity in enumerate(data[IDENTITY]):
            fields = {n: data[n][r] for n in self.names if data[n][r] not in (None, "")}
            out.append(json.dumps({"identity": identity, "fields": fields}, ensure_ascii=False))
        return ("\n".join(out) + "\n").encode()
