"""The code location's origin, for runs started outside the webserver (`connector sync`, the demo).

The UI lists a job's runs by their origin's label (``<repository>@<location>``) and
re-executes a run in the code location that origin names; a run without an origin is in no
job's list and cannot be re-executed. The origin is the one `dagster dev -w workspace.yaml`
(`make ui`) gives the code location, read from the same ``workspace.yaml`` by Dagster's own
loader: nothing is started, the file is only read.
"""

from __future__ import annotations

import logging
from pathlib import Path

# Dagster has no public API for origins: these are what `dagster job launch` and the
# webserver use (Dagster is pinned to 1.13; tests/defs/test_demo_state.py holds the contract)
from dagster._core.definitions.repository_definition.valid_definitions import (
    SINGLETON_REPOSITORY_NAME,
)
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.workspace.load import location_origins_from_yaml_paths

log = logging.getLogger(__name__)

# relative to the working directory, the project root (where the mappings' paths resolve too)
WORKSPACE_FILE = Path("workspace.yaml")


def job_origin(job_name: str, workspace: Path = WORKSPACE_FILE) -> RemoteJobOrigin | None:
    """The origin of ``job_name`` in the code location ``workspace`` loads, or ``None`` (the run
    is then recorded without one, as before) when there is no such file or it names several
    locations (which one is ours is not known)."""
    if not workspace.is_file():
        log.info("%s not found: runs are recorded without a code location", workspace.absolute())
        return None
    # the path as given, as `dagster dev -w workspace.yaml` passes it: Dagster derives the
    # location's working directory from it ("/project/" then, not "/project")
    locations = location_origins_from_yaml_paths([str(workspace)])
    if len(locations) != 1:
        log.warning(
            "%s names %d code locations: runs are recorded without one",
            workspace.absolute(),
            len(locations),
        )
        return None
    # definitions.py declares one `Definitions`, which Dagster serves as its singleton repository
    repository = RemoteRepositoryOrigin(locations[0], SINGLETON_REPOSITORY_NAME)
    return repository.get_job_origin(job_name)
