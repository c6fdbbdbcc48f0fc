"""A small world for account-level tests: a CRM table (SQLite, incremental on a cursor) and
POS exports (CSV, one file a day) feeding one destination account through two mappings,
with the expected end state computed here, independently of the connector."""

from __future__ import annotations

import csv
import random
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector import delivery, pipeline
from connector.destinations.copernica import CopernicaClient
from connector.destinations.http import RetryPolicy
from connector.destinations.target import TargetClient
from connector.ledger import Batch, Ledger
from connector.mapping import load_mappings
from connector.outbox import build as outbox_build
from connector.settings import CopernicaSettings, Settings, TargetSettings, load_settings

CRM_PARAMS = ("email", "tier")
POS_PARAMS = ("lastStore", "lastAmount")
OPEN_STATES = ("queued", "claimed", "submitted")


def mapping_yaml(
    name: str, source: str, destination: str, id_type: str, params: dict[str, str]
) -> str:
    lines = [f"name: {name}", source, f"destination: {destination}"]
    lines.append(f"identity: {{column: customer_id, type: {id_type}}}")
    lines.append("params:")
    lines += [f"  {param}: {column}" for param, column in params.items()]
    return "\n".join(lines) + "\n"


@dataclass
class World:
    """Sources, mappings and settings in ``root``; ``expected`` is the model's end state."""

    root: Path
    url: str
    destination: str = "target"
    api_version: str = "v2"
    id_type: str = "thirdPartyId"
    # identity -> param -> (day, value): the latest non-empty value in the source's order
    expected: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    _crm_rows: int = 0

    def __post_init__(self) -> None:
        (self.root / "mappings").mkdir(parents=True, exist_ok=True)
        (self.root / "pos").mkdir(exist_ok=True)
        self.db = self.root / "crm.db"
        with sqlite3.connect(self.db) as con:
            con.execute(
                "create table if not exists customers (row_id integer primary key, "
                "customer_id text, email text, tier text, updated_at text)"
            )
        crm = mapping_yaml(
            "crm",
            f"source: {{kind: sql, url: 'sqlite:///{self.db}', table: customers, "
            "cursor: updated_at}",
            self.destination,
            self.id_type,
            {"email": "email", "tier": "tier"},
        )
        pos = mapping_yaml(
            "pos",
            f"source: {{kind: csv, path: '{self.root / 'pos'}/pos_*.csv', date_from: filename}}",
            self.destination,
            self.id_type,
            {"lastStore": "store", "lastAmount": "amount"},
        )
        (self.root / "mappings" / "crm.yaml").write_text(crm)
        (self.root / "mappings" / "pos.yaml").write_text(pos)

    # -- settings ------------------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        target = dict(
            base_url=self.url,
            client_code="demo",
            api_version=self.api_version,
            calls_per_minute=100_000,
            poll_interval_s=0.05,
            timeout_s=10,
            verify_sample=3,
        )
        target.update(overrides.pop("target", {}))
        base: dict[str, Any] = dict(
            state_dir=self.root / "state",
            mappings_dir=self.root / "mappings",
            off_peak="always",
            timezone="UTC",
            max_attempts=12,
        )
        base.update(overrides)
        return load_settings(
            **base,
            target=TargetSettings(**target),
            copernica=CopernicaSettings(
                base_url=f"{self.url}/v3", database="shop", concurrency=4, timeout_s=10
            ),
        )

    # -- sources -------------------------------------------------------------------

    def _expect(self, ident: str, day: str, values: dict[str, str | None]) -> None:
        held = self.expected.setdefault(ident, {})
        for param, value in values.items():
            if value in (None, ""):
                continue
            if param not in held or held[param][0] <= day:
                held[param] = (day, str(value))

    def crm(self, day: str, rows: Iterable[tuple[str, str | None, str | None]]) -> None:
        """CRM rows updated on ``day`` (customer_id, email, tier), in this order."""
        with sqlite3.connect(self.db) as con:
            for ident, email, tier in rows:
                self._crm_rows += 1
                stamp = f"{day} 08:{self._crm_rows // 60 % 60:02d}:{self._crm_rows % 60:02d}"
                con.execute(
                    "insert into customers (customer_id, email, tier, updated_at) "
                    "values (?, ?, ?, ?)",
                    (ident, email, tier, stamp),
                )
                self._expect(ident, day, {"email": email, "tier": tier})

    def pos(self, day: str, rows: Sequence[tuple[str, str | None, str | None]]) -> None:
        """The POS export of ``day`` (customer_id, store, amount), in this order."""
        with (self.root / "pos" / f"pos_{day}.csv").open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["customer_id", "store", "amount"])
            for ident, store, amount in rows:
                out.writerow([ident, store or "", amount or ""])
                self._expect(ident, day, {"lastStore": store, "lastAmount": amount})

    # -- running -------------------------------------------------------------------

    def mappings(self) -> list[Any]:
        mappings, errors = load_mappings(self.root / "mappings")
        assert not errors, errors
        return mappings

    def prepare(self, settings: Settings, ledger: Ledger, days: Sequence[str]) -> None:
        """The mapping stages of every mapping for ``days`` (in that order)."""
        for day in days:
            for mapping in self.mappings():
                pipeline.prepare(mapping, day, settings, ledger)

    def build(self, settings: Settings, ledger: Ledger) -> outbox_build.BuildResult:
        names = [m.name for m in self.mappings()]
        return outbox_build.build(settings, ledger, self.destination, mappings=names)

    def client(self, settings: Settings) -> Any:
        """A client that retries fast (the sandbox's faults are drawn per call)."""
        policy = RetryPolicy(
            max_attempts=8, base_delay_s=0.01, max_delay_s=0.1, max_total_s=30, rng=random.Random(3)
        )
        if self.destination == "target":
            return TargetClient(settings.target, retry=policy)
        return CopernicaClient(settings.copernica, match_field=self.id_type, retry=policy)

    def deliver(self, settings: Settings, ledger: Ledger, *, rounds: int = 400) -> None:
        """Drain and poll until nothing is queued or open (bounded)."""
        with self.client(settings) as client:
            for _ in range(rounds):
                self._round(settings, ledger, client)
                with ledger.session() as s:
                    open_ = s.query(Batch).filter(Batch.state.in_(OPEN_STATES)).count()
                if open_ == 0:
                    return
                time.sleep(0.05)
        raise AssertionError("delivery did not settle")

    def submit(self, settings: Settings, ledger: Ledger) -> None:
        """One drain: what is queued is submitted, nothing is polled."""
        with self.client(settings) as client:
            delivery.drain(settings, ledger, destination=self.destination, client=client)

    def poll(self, settings: Settings, ledger: Ledger) -> None:
        """One poll of the open batches."""
        with self.client(settings) as client:
            delivery.poll(settings, ledger, destination=self.destination, client=client)

    def _round(self, settings: Settings, ledger: Ledger, client: Any) -> None:
        delivery.drain(settings, ledger, destination=self.destination, client=client)
        delivery.poll(settings, ledger, destination=self.destination, client=client, wait=False)

    def sync(self, settings: Settings, ledger: Ledger, days: Sequence[str]) -> None:
        """One cycle: the days' mapping stages, the account's outbox, delivery to the end."""
        self.prepare(settings, ledger, days)
        self.build(settings, ledger)
        self.deliver(settings, ledger)

    def expected_values(self, ident: str) -> dict[str, str]:
        return {param: value for param, (_, value) in self.expected.get(ident, {}).items()}


def make_ledger(settings: Settings) -> Ledger:
    ledger = Ledger(settings.ledger_url)
    ledger.create_all()
    return ledger
