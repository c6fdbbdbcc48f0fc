"""The Dagster instance the connector records its runs in, and the DAGSTER_HOME it lives in.

One rule for `connector sync`, `make demo` and `make ui`: ``$DAGSTER_HOME`` when it is set,
else ``<state folder>/dagster_home`` (``docs/state.md``). A home the connector creates (the
one under the state folder, or a DAGSTER_HOME that did not exist yet) gets a ``dagster.yaml``
that turns telemetry off and keeps Dagster's default storage (SQLite files in the folder), so
runs print neither the telemetry banner nor "No dagster instance configuration file". An
existing ``dagster.yaml`` is never touched, nor a DAGSTER_HOME folder someone else made.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from filelock import FileLock

DAGSTER_HOME_DIR = "dagster_home"  # under the state folder when DAGSTER_HOME is not set
INSTANCE_CONFIG = "dagster.yaml"
INSTANCE_LOCK = ".connector-instance.lock"
DEFAULT_INSTANCE_CONFIG = """\
# Written by the connector (connector/defs/instance.py) for the Dagster instance of its state
# folder; it never overwrites this file. Storage is Dagster's default: SQLite files here.
# A production instance (PostgreSQL storage, run queue, pools): deploy/dagster.yaml.
telemetry:
  enabled: false
"""


def dagster_home(state_dir: Path) -> Path:
    """``$DAGSTER_HOME`` when set, else ``<state_dir>/dagster_home``; absolute."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).absolute() if home else (state_dir / DAGSTER_HOME_DIR).absolute()


def prepare_dagster_home(state_dir: Path) -> Path:
    """The DAGSTER_HOME of ``state_dir`` (see ``dagster_home``), created with its
    ``dagster.yaml`` when the connector owns it, and set in this process's environment (so
    Dagster and the processes started from here, such as `dagster dev`, use it)."""
    chosen_by_user = bool(os.environ.get("DAGSTER_HOME"))
    home = dagster_home(state_dir)
    created = not home.is_dir()
    home.mkdir(parents=True, exist_ok=True)
    if created or not chosen_by_user:
        write_instance_config(home)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def write_instance_config(home: Path) -> bool:
    """Write the connector's ``dagster.yaml`` in ``home`` unless one is there; whether it wrote.

    Created exclusively: of two processes starting at once one writes it, and a file a user
    wrote, even a moment ago, stays as it is."""
    try:
        with (home / INSTANCE_CONFIG).open("x", encoding="utf-8") as handle:
            handle.write(DEFAULT_INSTANCE_CONFIG)
    except FileExistsError:
        return False
    return True


def instance_for(state_dir: Path) -> dg.DagsterInstance:
    """The persistent instance in the DAGSTER_HOME of ``state_dir`` (``prepare_dagster_home``).

    Opened under a file lock in DAGSTER_HOME: Dagster creates its SQLite storages on first
    use, and two processes creating them at once (two syncs on a fresh install) leave its
    migration table with two heads, after which no run starts."""
    home = prepare_dagster_home(state_dir)
    with FileLock(str(home / INSTANCE_LOCK)):
        instance = dg.DagsterInstance.get()
        # the storages are created when first touched: touch them inside the lock
        instance.run_storage.has_run("none")
        instance.event_log_storage.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.RUN_SUCCESS), limit=1
        )
        instance.schedule_storage  # noqa: B018
    return instance
