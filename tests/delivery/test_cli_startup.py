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
