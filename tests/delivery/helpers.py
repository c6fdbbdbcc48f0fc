"""Queued batches for delivery tests, the way a sync queues them: a mapping's source export of
a day prepared into its profile store, then the account's outbox built (``queue``)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from connector import delivery
from connector.ledger import Batch, Ledger
from connector.mapping import SourceMapping, load_mapping
from connector.outbox import build as outbox_build
from connector.pipeline import prepare
from connector.settings import CopernicaSettings, Settings, TargetSettings, load_settings

TRICKY = [
    "Zoë Ñoño 東京 🚀",
    "a, b, c",
    "line1\nline2",
    "100% sure",
    "fish & chips",
    "1+1=2",
    "path/to/x",
    "=SUM(A1)",
    "  spaced  ",
    "semi;colon \"quoted\" 'single'",
]


def make_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    target = dict(
        base_url=url,
        client_code="demo",
        api_version="v2",
        calls_per_minute=100_000,
        poll_interval_s=0.05,
        timeout_s=10,
        verify_sample=5,
    )
    target.update(overrides.pop("target", {}))
    copernica = dict(base_url=f"{url}/v3", database="shop", concurrency=4, timeout_s=10)
    copernica.update(overrides.pop("copernica", {}))
    base = dict(
        state_dir=tmp_path / "state",
        mappings_dir=tmp_path / "mappings",
        off_peak="always",
        timezone="Europe/Amsterdam",
        max_attempts=3,
    )
    base.update(overrides)
    return load_settings(
        **base, target=TargetSettings(**target), copernica=CopernicaSettings(**copernica)
    )


def make_ledger(settings: Settings) -> Ledger:
    ledger = Ledger(settings.ledger_url)
    ledger.create_all()
    return ledger


def profiles(n: int, *, prefix: str = "cust", tricky: bool = True) -> pa.Table:
    ids = [f"{prefix}-{i:05d}" for i in range(n)]
    tier = [TRICKY[i % len(TRICKY)] if tricky else f"t{i}" for i in range(n)]
    city = [None if i % 4 == 3 else f"City {i} & Co/+%" for i in range(n)]
    return pa.table(
        {
            "_identity": ids,
            "tier": tier,
            "city": city,
        }
    )


def write_mapping(
    settings: Settings,
    names: list[str],
    *,
    name: str = "crm",
    destination: str = "target",
    identity_type: str = "thirdPartyId",
) -> SourceMapping:
    """A CSV mapping ``name`` (one export a day, ``<name>_<day>.csv``, columns ``id`` and
    ``names``) in ``settings.mappings_dir``; returns it as loaded."""
    folder = exports_dir(settings, name)
    folder.mkdir(parents=True, exist_ok=True)
    settings.mappings_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": name,
        "source": {"kind": "csv", "path": str(folder / f"{name}_*.csv")},
        "destination": destination,
        "identity": {"column": "id", "type": identity_type},
        "params": {n: n for n in names},
    }
    path = settings.mappings_dir / f"{name}.yaml"
    path.write_text(json.dumps(spec, indent=2))  # YAML reads JSON
    return load_mapping(path)


def exports_dir(settings: Settings, name: str) -> Path:
    return Path(settings.state_dir).parent / "exports" / name


def write_export(settings: Settings, name: str, partition: str, table: pa.Table) -> Path:
    """``table`` (``_identity`` and the params; null = an empty field) as the CSV export of
    mapping ``name`` for day ``partition``; a row's source ref is ``<file>:<its first line>``."""
    names = [c for c in table.column_names if not c.startswith("_")]
    path = exports_dir(settings, name) / f"{name}_{partition}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [table.column("_identity").to_pylist()] + [table.column(n).to_pylist() for n in names]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", *names])
        writer.writerows(["" if v is None else v for v in row] for row in zip(*columns))
    return path


def stage(
    settings: Settings,
    ledger: Ledger,
    table: pa.Table,
    *,
    destination: str = "target",
    identity_type: str = "thirdPartyId",
    name: str = "crm",
    partition: str = "2026-06-01",
) -> SourceMapping:
    """The rows of ``table`` as mapping ``name``'s source export of day ``partition``,
    prepared as a sync prepares them: extract, transform, merge into the profile store (the
    account's outbox is not built: see ``queue``)."""
    names = [c for c in table.column_names if not c.startswith("_")]
    mapping = write_mapping(
        settings, names, name=name, destination=destination, identity_type=identity_type
    )
    write_export(settings, name, partition, table)
    prepare(mapping, partition, settings, ledger)
    return mapping


def queue(
    settings: Settings,
    ledger: Ledger,
    table: pa.Table,
    *,
    destination: str = "target",
    identity_type: str = "thirdPartyId",
    name: str = "crm",
    partition: str = "2026-06-01",
) -> list[Batch]:
    """``stage`` the rows, then build the account's outbox; returns the batches it queued."""
    stage(
        settings,
        ledger,
        table,
        destination=destination,
        identity_type=identity_type,
        name=name,
        partition=partition,
    )
    return outbox_build.build(settings, ledger, destination).batches


def run_until_settled(
    settings: Settings,
    ledger: Ledger,
    *,
    destination: str = "target",
    client: Any = None,
    rounds: int = 200,
    **drain_kw: Any,
) -> list[Any]:
    """Drain and poll until no batch is queued or open (bounded)."""
    results = []
    for _ in range(rounds):
        results.append(
            delivery.drain(settings, ledger, destination=destination, client=client, **drain_kw)
        )
        results.append(
            delivery.poll(settings, ledger, destination=destination, client=client, wait=False)
        )
        with ledger.session() as s:
            open_ = (
                s.query(Batch).filter(Batch.state.in_(("queued", "claimed", "submitted"))).count()
            )
        if open_ == 0:
            return results
        time.sleep(0.05)
    raise AssertionError("delivery did not settle")
