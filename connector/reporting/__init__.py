"""Reporting: what the connector tells people about its deliveries, read from the ledger.

The definitions of every count the reports show (``counts``), the record of each delivery
run kept as the report's history (``runs``), the delivery status report and its files
(``outcomes``, ``chart``, ``report_files`` and its Jinja2 template under ``templates/``),
the status and trace views of the CLI (``status``, ``trace``), a sync's summary
(``sync_summary``) and the ledger questions the schedules and sensors ask (``queries``).
No Dagster here.
"""

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
    trace,
    trace_exit_code,
)

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
    "trace",
    "trace_exit_code",
    "write_csv",
    "write_html",
    "write_report",
]
