"""Fixtures shared by every test layer: real databases by URL, the sandbox server on a free port."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text


def _database_url(var: str) -> str:
    url = os.environ.get(var)
    if not url:
        pytest.skip(f"{var} is not set: no server to test against (the CI run sets it)")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # a set URL that does not answer is a failure, not a skip
        pytest.fail(f"{var} is set but the server does not answer: {exc}")
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a real PostgreSQL database (CONNECTOR_TEST_POSTGRES_URL)."""
    return _database_url("CONNECTOR_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """URL of a real MariaDB database (CONNECTOR_TEST_MARIADB_URL)."""
    return _database_url("CONNECTOR_TEST_MARIADB_URL")


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """No test reads the developer's own CONNECTOR_* environment, .env or connector.toml."""
    for key in list(os.environ):
        if key.startswith("CONNECTOR_") and not key.startswith("CONNECTOR_TEST_"):
            monkeypatch.delenv(key)
    yield
