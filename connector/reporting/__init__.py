"""Reporting: what the connector tells people about its deliveries, read from the ledger.

The delivery status report and its files (``outcomes``, ``report_files``), the status and
trace views of the CLI (``status``, ``trace``), a sync's summary (``sync_summary``) and the
ledger questions the schedules and sensors ask (``queries``). No Dagster here.
"""

from connector.reporting.outcomes import OUTCOMES, StatusReport, collect
from connector.reporting.report_files import safe_cell, write_csv, write_html, write_report
from connector.reporting.status import DestinationStatus, StatusView, batch_detail, status_view
from connector.reporting.sync_summary import DELIVERY_COLUMNS, SUMMARY_COLUMNS, SyncSummary
from connector.reporting.trace import AccountProfile, TraceRow, account_profiles, trace

__all__ = [
    "DELIVERY_COLUMNS",
    "OUTCOMES",
    "SUMMARY_COLUMNS",
    "AccountProfile",
    "DestinationStatus",
    "StatusReport",
    "StatusView",
    "SyncSummary",
    "TraceRow",
    "account_profiles",
    "batch_detail",
    "collect",
    "safe_cell",
    "status_view",
    "trace",
    "write_csv",
    "write_html",
    "write_report",
]
