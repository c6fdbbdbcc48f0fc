"""One batch of the outbox as a destination reads it: the file, its manifest, its rows.

The outbox package owns the batch and manifest formats: ``connector.outbox.writer`` writes them,
``connector.outbox.manifests`` decodes chosen lines, and this module is what the rest of the
connector reads a batch through (a destination submits the file or its rows; delivery reads
the manifest). Nothing else parses a batch file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from connector.outbox import manifests


@dataclass(frozen=True)
class OutboxFile:
    """A batch file as the ledger names it (``Batch``): what a destination needs to send it."""

    batch_id: int
    path: Path
    manifest_path: Path
    identity_type: str  # pcId | thirdPartyId | the Copernica match field
    row_count: int

    @classmethod
    def of(cls, batch: Any) -> OutboxFile:
        """The file of a ``ledger.Batch``."""
        return cls(
            batch_id=int(batch.id),
            path=Path(batch.path),
            manifest_path=Path(batch.manifest_path),
            identity_type=str(batch.identity_type),
            row_count=int(batch.row_count),
        )

    @property
    def name(self) -> str:
        return self.path.name

    def manifest(self) -> pa.Table:
        """The manifest's rows (no values: :meth:`with_values` adds them)."""
        return manifests.read(self.manifest_path)

    def with_values(self, rows: pa.Table) -> pa.Table:
        """Manifest ``rows`` with their param values, decoded from the file."""
        return manifests.with_values(self.path, rows)

    def param_names(self) -> list[str]:
        return manifests.param_names(self.manifest())

    def rows(self) -> Iterator[tuple[str, dict[str, str]]]:
        """Each line's identity and non-empty values (a Copernica JSON-lines file)."""
        with self.path.open("r", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    doc = json.loads(line)
                    yield str(doc["identity"]), {k: str(v) for k, v in doc["fields"].items()}
