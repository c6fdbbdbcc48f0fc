"""Reporting: what the connector tells people about its deliveries, read from the ledger.

The definitions of every count the reports show (``counts``), the record of each delivery
run kept as the report's history (``runs``), the delivery status report and its files
(``outcomes``, ``chart``, ``report_files`` and its Jinja2 template under ``templates/``),
the status and trace views of the CLI (``status``, ``trace``), a sync's summary
(``sync_summary``) and the ledger questions the schedules and sensors ask (``queries``).
No Dagster here.

The names below are imported from their modules when first used (PEP 562): a command
that needs one report does not import every report's dependencies (the delivery engine,
its HTTP clients, DuckDB). ``trace`` names the module: its function is
``connector.reporting.trace.trace``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.reporting.counts import DEFINITIONS, DELIVERY_COUNTS, MAPPING_COUNTS
    from connector.reporting.outcomes import StatusReport, collect
    from connector.reporting.queries import Undelivered
    from connector.reporting.report_files import safe_cell, write_csv, write_html, write_report
    from connector.reporting.runs import (
        ACCOUNT_COUNTS,
        Reason,
        RunRecord,
        record_run,
        run_history,
        run_url,
    )
    from connector.reporting.status import (
        DestinationStatus,
        StatusView,
        batch_detail,
        batch_exit_code,
        status_view,
    )
    from connector.reporting.sync_summary import (
        DELIVERY_COLUMNS,
        EARLIER_COLUMNS,
        SUMMARY_COLUMNS,
        SyncFailure,
        SyncSummary,
    )
    from connector.reporting.trace import (
        AccountProfile,
        AccountState,
        TraceRow,
        account_profiles,
        account_states,
        trace_exit_code,
    )

# each public name -> the module of this package that defines it
_MODULE_OF = {
    "ACCOUNT_COUNTS": "runs",
    "AccountProfile": "trace",
    "AccountState": "trace",
    "DEFINITIONS": "counts",
    "DELIVERY_COLUMNS": "sync_summary",
    "DELIVERY_COUNTS": "counts",
    "DestinationStatus": "status",
    "EARLIER_COLUMNS": "sync_summary",
    "MAPPING_COUNTS": "counts",
    "Reason": "runs",
    "RunRecord": "runs",
    "SUMMARY_COLUMNS": "sync_summary",
    "StatusReport": "outcomes",
    "StatusView": "status",
    "SyncFailure": "sync_summary",
    "SyncSummary": "sync_summary",
    "TraceRow": "trace",
    "Undelivered": "queries",
    "account_profiles": "trace",
    "account_states": "trace",
    "batch_detail": "status",
    "batch_exit_code": "status",
    "collect": "outcomes",
    "record_run": "runs",
    "run_history": "runs",
    "run_url": "runs",
    "safe_cell": "report_files",
    "status_view": "status",
    "trace_exit_code": "trace",
    "write_csv": "report_files",
    "write_html": "report_files",
    "write_report": "report_files",
}

__all__ = [
    "ACCOUNT_COUNTS",
    "DEFINITIONS",
    "DELIVERY_COLUMNS",
    "DELIVERY_COUNTS",
    "EARLIER_COLUMNS",
    "MAPPING_COUNTS",
    "SUMMARY_COLUMNS",
    "AccountProfile",
    "AccountState",
    "DestinationStatus",
    "Reason",
    "RunRecord",
    "StatusReport",
    "StatusView",
    "SyncFailure",
    "SyncSummary",
    "TraceRow",
    "Undelivered",
    "account_profiles",
    "account_states",
    "batch_detail",
    "batch_exit_code",
    "collect",
    "record_run",
    "run_history",
    "run_url",
    "safe_cell",
    "status_view",
    "trace_exit_code",
    "write_csv",
    "write_html",
    "write_report",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (then kept as an attribute)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
