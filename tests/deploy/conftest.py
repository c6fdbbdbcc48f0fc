"""Fixtures of the deployment tests: PostgreSQL databases of their own (Dagster's storage, the
ledger), made for one test and dropped after it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.defs.conftest import workdir  # noqa: F401  (the sample project in tmp_path)


@contextmanager
def _database(postgres_url: str, prefix: str) -> Iterator[str]:
    """A new database on the test server, its URL naming the driver (as deploy/README.md asks
    of DAGSTER_PG_URL); dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(postgres_url).set(drivername="postgresql+psycopg2", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def dagster_pg_url(postgres_url: str) -> Iterator[str]:
    """A database for a Dagster instance's run, event log and schedule storage."""
    with _database(postgres_url, "dagster_deploy") as url:
        yield url


@pytest.fixture
def ledger_pg_url(postgres_url: str) -> Iterator[str]:
    """A database for the connector's ledger (CONNECTOR_STATE_DB_URL)."""
    with _database(postgres_url, "ledger_deploy") as url:
        yield url
