"""Fixtures shared by every test layer: real databases by URL, an S3 server on a free port."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
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
        connector = key.startswith("CONNECTOR_") and not key.startswith("CONNECTOR_TEST_")
        cloud = key.startswith(("AWS_", "GOOGLE_", "AZURE_"))  # nor the developer's cloud account
        if connector or cloud:
            monkeypatch.delenv(key)
    yield


@dataclass
class S3Server:
    """A local S3-compatible server (moto in server mode) on a loopback port.

    ``env`` is what a process needs to reach it (endpoint, fake keys, plain HTTP allowed):
    set it with ``monkeypatch`` or pass it to a subprocess. ``bucket`` exists from the start;
    :meth:`new_bucket` makes another (a test that wants an empty one).
    """

    endpoint: str
    bucket: str
    env: dict[str, str] = field(default_factory=dict)

    def new_bucket(self, prefix: str = "test") -> str:
        """A new, empty bucket's name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        response = httpx.put(f"{self.endpoint}/{name}", timeout=30)
        response.raise_for_status()
        return name

    def url(self, prefix: str = "") -> str:
        """``s3://<bucket>/<prefix>``: a location in the default bucket."""
        return f"s3://{self.bucket}/{prefix.strip('/')}".rstrip("/")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 on 127.0.0.1 for the session, with a bucket (stopped at the end)."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "testing-key-id",
            "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
            "AWS_REGION": "us-east-1",
        }
        s3 = S3Server(endpoint=endpoint, bucket="", env=env)
        s3.bucket = s3.new_bucket("connector")
        yield s3
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``s3_server`` with its environment set in this process for the test."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server
