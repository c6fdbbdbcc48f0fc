"""A connector process for concurrency tests: ``python -m tests.reliability.concurrency_driver
CONFIG.json``.

CONFIG: ``{"root", "world", "url", "ledger_url", "role", "days": [partitions to prepare],
"deliver": true, "seed", "customers", "settings": {...}}``. The process writes
``<root>/ready.<role>`` and waits for ``<root>/go`` (the parent creates it once every process
is ready), so the processes really start their work together. Then it prepares its days (every
mapping) and, when it prepared any, builds every account's outbox (as ``D/outbox`` after the
mapping assets), drains/polls both destinations until nothing is open, writing what it did to
``<root>/result.<role>.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path


def _quiet(ledger: object) -> bool:
    """Nothing claimed or submitted any more (what is still queued waits for quota)."""
    from sqlalchemy import func, select

    from connector.ledger import Batch

    with ledger.session() as s:  # type: ignore[attr-defined]
        n = s.scalar(select(func.count(Batch.id)).where(Batch.state.in_(("claimed", "submitted"))))
    return not n


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    from connector import delivery, pipeline
    from connector.ledger import Ledger

    from .harness import build_outboxes, open_batches
    from .world import World, make_settings

    root = Path(config["root"])
    role = config["role"]
    world = World(Path(config["world"]), seed=config.get("seed", 1), customers=config["customers"])
    settings = make_settings(
        root,
        config["url"],
        mappings_dir=world.root / "mappings",
        state_db_url=config["ledger_url"],
        **config.get("settings", {}),
    )
    ledger = Ledger(settings.ledger_url)
    (root / f"ready.{role}").write_text("ready")
    deadline = time.monotonic() + 60
    while not (root / "go").exists():
        if time.monotonic() > deadline:
            return 4
        time.sleep(0.005)
    started = time.time()
    out: dict[str, object] = {
        "role": role,
        "started": started,
        "submitted": [],
        "rows": 0,
    }  # rows: target
    for day in config.get("days", []):
        for mapping in world.mappings:
            pipeline.prepare(mapping, day, settings, ledger)
    if config.get("days"):
        out["built"] = [
            {"key": r.destination_key, "changed": r.candidates, "rows": r.rows}
            for r in build_outboxes(settings, ledger, world.mappings)
        ]
    out["prepared_s"] = time.time() - started
    code = 0
    if config.get("deliver", True):
        code = 3
        for _ in range(400):
            now = dt.datetime.now(dt.UTC)
            for dest in ("target", "copernica"):
                r = delivery.drain(settings, ledger, destination=dest, now=now)
                out["submitted"] += list(r.submitted)  # type: ignore[operator]
                if dest == "target":
                    out["rows"] += r.rows_submitted  # type: ignore[operator]
            delivery.poll(settings, ledger, destination="target", now=now)
            if open_batches(ledger) == 0 or (config.get("quiet") and _quiet(ledger)):
                code = 0
                break
            time.sleep(0.02)
    out["elapsed_s"] = time.time() - started
    ledger.dispose()
    (root / f"result.{role}.json").write_text(json.dumps(out))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
