"""Profile store and outbox fixtures: settings of account ``target:demo`` and its ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.ledger import Ledger
from connector.settings import Settings
from tests.batches.fakes import make_settings

# a fresh SQLite file or PostgreSQL database per test, as the ledger's own tests use
from tests.ledger.conftest import fresh_postgres_url, ledger_url, sqlite_ledger_url  # noqa: F401


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    led = Ledger(settings.ledger_url)
    led.upgrade()
    yield led
    led.dispose()
