"""The ledger: the source of truth for what was extracted, queued, submitted and confirmed.

``models`` holds the tables and the batch states, ``store`` the database (``Ledger``) and its
migrations, and ``batches``, ``delivered`` and ``stages`` the queries the stages and delivery
share. Callers import from ``connector.ledger``.
"""

from connector.ledger.batches import (
    claim_batches,
    counts_by_state,
    in_flight_manifests,
    register_batch,
)
from connector.ledger.delivered import (
    DELIVERED_COLUMNS,
    export_delivered,
    record_delivered,
)
from connector.ledger.models import (
    BATCH_STATES,
    CLAIMED,
    COMPLETE,
    DEAD,
    EXPIRED,
    FAILED,
    FINAL_STATES,
    IN_FLIGHT_STATES,
    OPEN_STATES,
    QUEUED,
    STUCK,
    SUBMITTED,
    SUPERSEDED,
    Base,
    Batch,
    Cursor,
    Delivered,
    IngestedFile,
    ProfileStore,
    QuotaUse,
    Reject,
    RowOutcome,
    StageRun,
    destination_key,
    utcnow,
)
from connector.ledger.stages import record_stage_run, replace_rejects
from connector.ledger.store import (
    MIGRATIONS_DIR,
    Ledger,
    alembic_config,
    make_engine,
    unit_of_work,
)

__all__ = [
    "BATCH_STATES",
    "CLAIMED",
    "COMPLETE",
    "DEAD",
    "DELIVERED_COLUMNS",
    "EXPIRED",
    "FAILED",
    "FINAL_STATES",
    "IN_FLIGHT_STATES",
    "MIGRATIONS_DIR",
    "OPEN_STATES",
    "QUEUED",
    "STUCK",
    "SUBMITTED",
    "SUPERSEDED",
    "Base",
    "Batch",
    "Cursor",
    "Delivered",
    "IngestedFile",
    "Ledger",
    "ProfileStore",
    "QuotaUse",
    "Reject",
    "RowOutcome",
    "StageRun",
    "alembic_config",
    "claim_batches",
    "counts_by_state",
    "destination_key",
    "export_delivered",
    "in_flight_manifests",
    "make_engine",
    "record_delivered",
    "record_stage_run",
    "register_batch",
    "replace_rejects",
    "unit_of_work",
    "utcnow",
]
