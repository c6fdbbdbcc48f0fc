"""Queued batches for delivery tests, written by the real outbox writer (``write_batches``)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

from connector import delivery
from connector.batches import write_batches
from connector.ledger import Batch, Ledger
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
            "_source_ref": [f"crm.customers:{i}" for i in range(n)],
            "tier": tier,
            "city": city,
        }
    )


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
    names = [c for c in table.column_names if not c.startswith("_")]
    mapping = SimpleNamespace(
        name=name,
        destination=destination,
        identity=SimpleNamespace(type=identity_type),
        param_names=names,
        params=dict.fromkeys(names, ""),
    )
    return write_batches(
        table, mapping=mapping, partition=partition, settings=settings, ledger=ledger
    )


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
