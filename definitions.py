"""The code location ``workspace.yaml`` loads: built when Dagster loads it, not on import."""

import dagster as dg

from connector.defs import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    """Assets, jobs, schedules and sensors of the mappings the settings point at."""
    return build_definitions()
