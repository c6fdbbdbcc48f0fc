"""Fixtures of the deployment tests: a PostgreSQL database of their own for Dagster's storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@pytest.fixture
def dagster_pg_url(postgres_url: str) -> Iterator[str]:
    """A new PostgreSQL database for a Dagster instance's storage, dropped afterwards; its URL
    names the driver, as deploy/README.md asks of DAGSTER_PG_URL."""
    name = f"dagster_deploy_{uuid.uuid4().hex[:10]}"
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
