"""One step of a sync as its own process: ``python -m tests.storage.driver STEP PARTITION``.

STEP is ``write`` (every mapping in CONNECTOR_MAPPINGS_DIR prepared for PARTITION, then every
account's outbox built: the extract-and-write step), ``drain`` (every account's queue
submitted) or ``poll`` (Target batches followed until final, at most 120 s). Everything else
comes from the environment, as in a container: CONNECTOR_STATE_DIR (this process's own local
folder), CONNECTOR_STATE_DB_URL (the shared ledger), CONNECTOR_OUTBOX_URL (the shared outbox),
the AWS_* variables of the object store, the destinations' base URLs. It prints one JSON line
of what it did.
"""

from __future__ import annotations

import json
import sys

from connector import delivery
from connector.ledger import Ledger
from connector.mapping import load_mappings
from connector.outbox import build as outbox_build
from connector.pipeline import prepare
from connector.settings import load_settings

DESTINATIONS = ("target", "copernica")


def main(step: str, partition: str) -> dict[str, object]:
    settings = load_settings()
    ledger = Ledger(settings.ledger_url)
    ledger.create_all()
    try:
        if step == "write":
            mappings, errors = load_mappings(settings.mappings_dir)
            if errors:
                raise SystemExit(f"mapping errors: {errors}")
            for mapping in mappings:
                prepare(mapping, partition, settings, ledger)
            built = {d: outbox_build.build(settings, ledger, d) for d in DESTINATIONS}
            return {d: [b.id for b in r.batches] for d, r in built.items()}
        if step == "drain":
            drained = {
                d: delivery.drain(settings, ledger, destination=d, force=True) for d in DESTINATIONS
            }
            return {d: r.submitted for d, r in drained.items()}
        if step == "poll":
            polled = delivery.poll(settings, ledger, destination="target", wait=True, timeout_s=120)
            return {"polled": polled.polled, "still_open": polled.still_open}
        raise SystemExit(f"unknown step {step!r} (write, drain or poll)")
    finally:
        ledger.dispose()


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
