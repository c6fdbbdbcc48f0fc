"""Records the runs of a `connector sync` in the Dagster instance, after the sync.

`connector sync` runs the job's steps without Dagster (``connector.defs.direct``) and leaves
a run log (``connector.defs.run_log``); this records each of its runs under its own run id,
with the code location's origin, by executing the run in process with the connector
resource replaying the logged outputs: the steps do no work again, and the run's
materializations, check results and step failures are the ones the assets make of those
outputs (one definition of what a run records). A run recorded this way starts and ends
when it was recorded; its figures (``seconds``, the run record's duration) are the sync's.

``python -m connector.defs.recorder LOG`` is what the sync starts in the background: on
success the log is removed; on failure it is renamed ``.failed`` beside a ``.log`` of why,
which the next sync reports and records again. A failure here never changes a sync's result.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import dagster as dg

from connector.defs import run_log
from connector.defs.definitions import build_definitions
from connector.defs.instance import instance_for
from connector.defs.jobs import NIGHTLY
from connector.defs.origin import job_origin
from connector.defs.resources import ConnectorResource
from connector.defs.runner import QUIET, _run_in_process

log = logging.getLogger(__name__)


def record(path: Path) -> list[str]:
    """Record the runs of the log at ``path`` in the instance; the ids of the runs recorded
    (a run already in the instance is left as it is)."""
    logs = run_log.read(path)
    connector = ConnectorResource.from_env(replay=str(path), **logs[0].resource_fields)
    settings = connector.settings()
    job = build_definitions(settings, connector).resolve_job_def(NIGHTLY)
    instance = instance_for(settings.state_dir)
    origin = job_origin(NIGHTLY)
    recorded = []
    for one in logs:
        if instance.has_run(one.run_id):
            continue
        _run_in_process(
            job,
            partition=one.partition,
            selection=[dg.AssetKey(list(key)) for key in one.selection],
            instance=instance,
            origin=origin,
            run_config=QUIET,
            tags={**one.tags, "connector/recorded": "after the sync"},
            run_id=one.run_id,
        )
        recorded.append(one.run_id)
    return recorded


def record_or_keep(path: Path) -> bool:
    """``record``; whether it did. On failure the log is kept as ``.failed`` with a ``.log``
    of the error beside it."""
    try:
        record(path)
    except Exception:
        failed = path.with_suffix(run_log.FAILED)
        path.replace(failed)
        failed.with_suffix(run_log.WHY).write_text(traceback.format_exc(), encoding="utf-8")
        return False
    path.unlink(missing_ok=True)
    path.with_suffix(run_log.WHY).unlink(missing_ok=True)
    return True


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    done = [record_or_keep(Path(arg)) for arg in sys.argv[1:]]
    sys.exit(0 if all(done) else 1)
