"""The manifest beside each batch file: its schema, its rows, and its Parquet writer.

A manifest holds one row per line of its batch file, in the same order: ``_identity``,
``_source_ref``, ``_digest`` and ``_filled``; the param names, in order, are in its schema
metadata under :data:`PARAMS_KEY`. The values are not copied there: the batch file holds
them (``connector.outbox.manifests`` decodes the lines it is asked for).

The rows handed to the writer (:func:`manifest_schema`) carry the values too: identity,
ref, digest, then one string column per param, unencoded, null = empty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connector.columns import DIGEST, FILLED, IDENTITY, SOURCE_REF
from connector.digests import filled_column

# the manifest's schema metadata key naming the params, in order (a JSON list)
PARAMS_KEY = b"connector.params"

# Manifests are written once and read back a batch at a time: lz4 pages, no dictionary, no
# statistics (nothing is looked up by value in them).
MANIFEST_PARQUET: dict[str, Any] = {
    "compression": "lz4",
    "use_dictionary": False,
    "write_statistics": False,
}
# ... except _digest: the hex of an MD5 is random text, which compression does not shrink
UNCOMPRESSED_COLUMNS = (DIGEST,)


def manifest_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A manifest's Parquet writer (lz4 pages, ``_digest`` uncompressed)."""
    codec = MANIFEST_PARQUET["compression"]
    compression = {name: "none" if name in UNCOMPRESSED_COLUMNS else codec for name in schema.names}
    return pq.ParquetWriter(path, schema, **{**MANIFEST_PARQUET, "compression": compression})


def stored_manifest_schema(param_names: Sequence[str]) -> pa.Schema:
    """The columns a manifest file holds: one row per batch line, without the values.

    The values stay in the batch file only: rows are almost always confirmed whole and
    never looked at again, and ``_filled`` is all that recording them needs.
    """
    return pa.schema(
        [(name, pa.string()) for name in (IDENTITY, SOURCE_REF, DIGEST, FILLED)],
        metadata={PARAMS_KEY: json.dumps(list(param_names)).encode()},
    )


def manifest_rows(rows: pa.RecordBatch, param_names: Sequence[str]) -> pa.RecordBatch:
    """What the manifest keeps of rows to batch (``stored_manifest_schema``): no values,
    ``_filled``.

    Rows that carry a complete string ``_filled`` (the batch stage's: extract computed it)
    keep it; otherwise it is computed from the values.
    """
    names = rows.schema.names
    filled = rows.column(FILLED) if FILLED in names else None
    if filled is None or filled.null_count or filled.type != pa.string():
        filled = filled_column(rows, param_names)
    return pa.RecordBatch.from_arrays(
        [rows.column(IDENTITY), rows.column(SOURCE_REF), rows.column(DIGEST), filled],
        schema=stored_manifest_schema(param_names),
    )


def manifest_schema(param_names: Sequence[str]) -> pa.Schema:
    """The rows ``write_batches`` takes, normalised: identity, ref, digest, values."""
    return pa.schema(
        [(IDENTITY, pa.string()), (SOURCE_REF, pa.string()), (DIGEST, pa.string())]
        + [(name, pa.string()) for name in param_names]
    )


def filled_input_schema(param_names: Sequence[str]) -> pa.Schema:
    """:func:`manifest_schema` and ``_filled`` after the values: rows in this form are taken
    as they are, their ``_filled`` written to the manifest instead of computed again."""
    return manifest_schema(param_names).append(pa.field(FILLED, pa.string()))
