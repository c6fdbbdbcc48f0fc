"""Profiles whose rows the source no longer holds: reported, not propagated.

A mapping's profile store keeps every identity its days ever held. When a SQL source's row
is deleted, the store still holds the identity, and so does the destination: Target's bulk
profile update can neither delete a profile nor clear an attribute, and deleting a
Copernica profile (a customer in a mailing database) is a decision the connector leaves to
its operator. So deletions are reported: :func:`deleted_at_source` compares the store's
identities with the identities the source holds now (the identity column's distinct
values, through the mapping's identity transforms), for SQL sources. A CSV export is a
day's file, not the whole customer base: a customer missing from it was not deleted.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from connector.columns import IDENTITY
from connector.encoding import quote_literal
from connector.ledger import Ledger, destination_key
from connector.mapping import SourceMapping, SqlSource
from connector.profiles import dedupe
from connector.profiles import store as profile_store
from connector.settings import Settings
from connector.sources.sql import iter_sql_identities
from connector.transform import apply_transforms

SAMPLE = 10


@dataclass
class Deletions:
    """Identities of the mapping's store that its source no longer holds."""

    store_identities: int = 0
    deleted: int = 0
    sample: list[str] = field(default_factory=list)  # the first, by identity


def deleted_at_source(
    mapping: SourceMapping, settings: Settings, ledger: Ledger
) -> Deletions | None:
    """The mapping's store against its source now; None for a source that is not a table or
    query (see the module doc). Reads the identity column of the whole source."""
    if not isinstance(mapping.source, SqlSource):
        return None
    key = destination_key(str(mapping.destination), settings)
    ref = profile_store.find_store(ledger, key, mapping.name, cache_dir=settings.profiles_cache)
    if ref is None:
        return Deletions()
    schema = pa.schema([(IDENTITY, pa.string())])
    transforms = mapping.identity.transforms
    batches = (
        pa.record_batch([apply_transforms(values.cast(pa.string()), transforms)], schema=schema)
        for values in iter_sql_identities(mapping)
    )
    work = Path(settings.stage_dir) / "_deletions" / uuid.uuid4().hex[:12]
    con = dedupe.connect(work)
    try:
        con.register("source_ids", pa.RecordBatchReader.from_batches(schema, batches))
        con.execute(
            f"""CREATE TEMP TABLE gone AS
                SELECT s.{IDENTITY} FROM read_parquet({quote_literal(str(ref.path))}) s
                ANTI JOIN source_ids t ON t.{IDENTITY} = s.{IDENTITY}"""
        )
        ((deleted,),) = con.execute("SELECT count(*) FROM gone").fetchall()
        sample = [
            row[0]
            for row in con.execute(
                f"SELECT {IDENTITY} FROM gone ORDER BY {IDENTITY} LIMIT {SAMPLE}"
            ).fetchall()
        ]
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    return Deletions(store_identities=ref.identities, deleted=int(deleted), sample=sample)
