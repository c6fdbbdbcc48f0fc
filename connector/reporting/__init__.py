"""Reporting: what the connector tells people about its deliveries, read from the ledger.

The delivery status report and its files (``outcomes``, ``report_files``), the status and
trace views of the CLI (``status``, ``trace``), a sync's summary (``sync_summary``) and the
ledger questions the schedules and sensors ask (``queries``). No Dagster here.
"""

from connector.reporting.outcomes import OUTCOMES, StatusReport, collect
from connector.reporting.queries import Undelivered
from connector.reporting.report_files import safe_cell, write_csv, write_html, write_report
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
    trace,
    trace_exit_code,
)

__all__ = [
    "DELIVERY_COLUMNS",
    "EARLIER_COLUMNS",
    "OUTCOMES",
    "SUMMARY_COLUMNS",
    "AccountProfile",
    "AccountState",
    "DestinationStatus",
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
    "safe_cell",
    "status_view",
    "trace",
    "trace_exit_code",
    "write_csv",
    "write_html",
    "write_report",
]
