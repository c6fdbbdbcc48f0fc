"""Jobs: the nightly run of everything, the off-peak drain, the status poll."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from connector.defs.assets import DELIVERY_GROUP
from connector.defs.direct import NIGHTLY

__all__ = ["DRAIN", "NIGHTLY", "POLL", "build_jobs"]
DRAIN = "drain_outbox"
POLL = "poll_status"


# Any: dagster does not export the type `define_asset_job` returns.
def build_jobs(destinations: Sequence[str]) -> list[Any]:
    """The nightly job (every asset), the drain (delivery group) and the poll (the reports)."""
    delivery = dg.AssetSelection.groups(DELIVERY_GROUP)
    reports = dg.AssetSelection.assets(*[dg.AssetKey([d, "status_report"]) for d in destinations])
    return [
        dg.define_asset_job(
            NIGHTLY,
            selection=dg.AssetSelection.all(),
            description="Extract, map and batch partition D, then submit and poll.",
        ),
        dg.define_asset_job(
            DRAIN,
            selection=delivery,
            description="Submit queued batches inside the off-peak window and quota.",
        ),
        dg.define_asset_job(
            POLL,
            selection=reports,
            description="Poll open batches, record outcomes, refresh the reports.",
        ),
    ]
