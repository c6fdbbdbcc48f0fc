"""`connector --help` lists the commands without importing what only running them needs."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from connector.cli import main
try:
    main(["--help"], standalone_mode=False)
finally:
    heavy = ["dagster", "duckdb", "sqlalchemy", "connector.defs", "connector.reporting"]
    print(json.dumps({m: m in sys.modules for m in heavy}), file=sys.stderr)
"""


def test_help_imports_neither_dagster_nor_the_engines() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    for command in ("sync", "status", "trace", "mappings", "preview", "sandbox"):
        assert command in done.stdout
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == dict.fromkeys(loaded, False), loaded


SYNC_PROBE = """
import json, sys
import connector.reporting
from connector.reporting import SyncSummary
from connector.defs import direct
heavy = ["dagster", "connector.delivery", "aiohttp", "connector.reporting.trace"]
print(json.dumps({m: m in sys.modules for m in heavy}))
"""


def test_a_sync_imports_neither_dagster_nor_the_delivery_engine_before_it_delivers() -> None:
    # connector.reporting's names load with their own module (a sync's summary does not
    # bring the delivery engine and its HTTP clients in with it)
    done = subprocess.run(
        [sys.executable, "-c", SYNC_PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == dict.fromkeys(loaded, False), loaded


def test_every_name_connector_reporting_offers_is_found_in_its_module() -> None:
    import connector.reporting as reporting

    assert sorted(reporting.__all__) == sorted(reporting._MODULE_OF)
    for name in reporting.__all__:
        assert getattr(reporting, name) is not None


TARGET_PROBE = """
import json, sys
from connector.delivery import drain, poll
from connector.destinations.accounts import open_destination
print(json.dumps({"aiohttp": "aiohttp" in sys.modules}))
"""


def test_the_delivery_engine_loads_aiohttp_only_for_copernicas_puts() -> None:
    # Target's batches go through httpx: a Target-only run does not import aiohttp
    done = subprocess.run(
        [sys.executable, "-c", TARGET_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"aiohttp": False}
