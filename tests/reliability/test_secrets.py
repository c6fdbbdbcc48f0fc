"""Secrets: a full sync with both tokens set leaves them in no log line, event, file or output.

The sandbox demands the tokens (Target: bearer header; Copernica v3: ``?access_token=`` in the
query string, which httpx puts in its own log lines and exception messages). Afterwards every
captured log record (DEBUG, every logger, httpx and httpcore included), the persistent Dagster
instance's storage (its SQLite files), the ledger, the outbox, stage files, reports, exception
texts and ``connector status`` output are searched for the token values.
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.defs.runner import run_sync
from connector.destinations.copernica import CopernicaClient
from connector.destinations.http import DeliveryError, RetryPolicy
from connector.destinations.target import TargetClient
from connector.sample_data import ensure_sample_db
from connector.sandbox.testing import running_sandbox
from connector.settings import CopernicaSettings, TargetSettings, load_settings
from tests.defs.conftest import make_connector

ROOT = Path(__file__).resolve().parents[2]
TARGET_TOKEN = "tgt-SECRET-5b1e7c9d2a"
COPERNICA_TOKEN = "cop-SECRET-93f0aa71c4"
FAST = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02)


def _grep_tree(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and ".venv" not in path.parts:
            data = path.read_bytes()
            hits += [f"{path}: {n.decode()}" for n in needles if n in data]
    return hits


def test_full_sync_leaks_no_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_sample_db(ROOT / "sample_exports" / "crm.db")
    shutil.copytree(ROOT / "sample_exports", tmp_path / "sample_exports")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CONNECTOR_TARGET__TOKEN", TARGET_TOKEN)
    monkeypatch.setenv("CONNECTOR_COPERNICA__ACCESS_TOKEN", COPERNICA_TOKEN)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "dagster", "connector", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    needles = [TARGET_TOKEN.encode(), COPERNICA_TOKEN.encode()]
    # one sandbox per token: Target checks the bearer, Copernica the access_token parameter
    with running_sandbox(token=TARGET_TOKEN) as tgt, running_sandbox(token=COPERNICA_TOKEN) as cop:
        connector = make_connector(
            tmp_path,
            tgt.url,
            off_peak="always",
            copernica_base_url=f"{cop.url}/v3",
        )
        summary = run_sync(connector, partitions=["2026-11-20"])
        assert summary.ok, summary.failures
        confirmed = sum(c["confirmed"] for c in summary.per_account.values())
        assert confirmed > 0, summary.per_account
        assert cop.snapshot()["copernica"], "Copernica got nothing"
        # exceptions that carry a URL or a header: a refused token and a dead host
        settings = connector.settings()
        errors: list[str] = []
        wrong = settings.copernica.model_copy(update={"base_url": f"{tgt.url}/v3"})
        with CopernicaClient(wrong, match_field="customerid", retry=FAST) as c:
            result = c.put_profile("C1", {"email": "x@example.com"})
            errors.append(str(result.error))
        dead = settings.target.model_copy(update={"base_url": "http://127.0.0.1:9", "timeout_s": 1})
        with TargetClient(dead, retry=FAST) as t:
            try:
                t.fetch_profile("C1", "thirdPartyId")
            except DeliveryError as exc:
                errors.append(repr(exc) + str(exc.__cause__) + str(exc.__context__))
        dead_cop = settings.copernica.model_copy(
            update={"base_url": "http://127.0.0.1:9/v3", "timeout_s": 1}
        )
        with CopernicaClient(dead_cop, match_field="customerid", retry=FAST) as c:
            result = c.put_profile("C1", {"email": "x@example.com"})
            errors.append(str(result.error))
    from connector.cli import main

    # the sync's ledger (status no longer creates an empty one where none is)
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(settings.state_dir))
    status = CliRunner().invoke(main, ["status"], env=dict(os.environ), catch_exceptions=False)
    assert status.exit_code == 0, status.output
    assert "outbox is empty" not in status.output
    texts = [r.getMessage() for r in caplog.records]
    texts += [r.exc_text or "" for r in caplog.records]
    texts += [caplog.text, status.output, *errors]
    assert any("access_token=" in t for t in texts), "no log line showed the query: test is blind"
    leaked = [t[:300] for t in texts if any(n.decode() in t for n in needles)]
    assert not leaked, f"tokens in {len(leaked)} log line(s)/outputs: {leaked[:3]}"
    event_dbs = list(home.rglob("*.db"))
    assert event_dbs, "no Dagster event storage to search: test is blind"
    assert not _grep_tree(tmp_path, needles), "a token was written to a file"


def test_tls_verification_on_by_default_and_off_only_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    assert settings.target.verify_tls and settings.copernica.verify_tls
    with (
        TargetClient(settings.target) as t,
        CopernicaClient(settings.copernica, match_field="id") as c,
    ):
        for client in (t, c):
            pool = client._http._transport._pool  # type: ignore[attr-defined]
            assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
            assert pool._ssl_context.check_hostname
    assert not [r for r in caplog.records if "TLS" in r.getMessage()]
    monkeypatch.setenv("CONNECTOR_TARGET__VERIFY_TLS", "false")
    monkeypatch.setenv("CONNECTOR_COPERNICA__VERIFY_TLS", "false")
    off = load_settings()
    assert not off.target.verify_tls and not off.copernica.verify_tls
    with caplog.at_level(logging.WARNING):
        TargetClient(off.target).close()
        CopernicaClient(off.copernica, match_field="id").close()
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("Adobe Target" in m and "OFF" in m for m in warned), warned
    assert any("Copernica" in m and "OFF" in m for m in warned), warned
    assert TargetSettings().verify_tls and CopernicaSettings().verify_tls


@pytest.mark.parametrize(
    "logger_name", ["httpx", "httpcore.connection", "httpcore.http11", "aiohttp.client"]
)
def test_a_token_logged_by_an_http_librarys_own_logger_is_masked(
    logger_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # a parent logger's filter does not see its children's records: each logger the
    # libraries made has the filter of its own
    import aiohttp  # noqa: F401 (its loggers exist once it is imported, as in a delivery)
    import httpcore  # noqa: F401

    from connector.destinations.http import install_log_scrubbing

    install_log_scrubbing()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger(logger_name).debug(
            "send_request url=https://api.example/v3/x?access_token=%s", "s3cr3t-token"
        )
    (record,) = [r for r in caplog.records if r.name == logger_name]
    assert "s3cr3t-token" not in record.getMessage()
    assert "access_token=***" in record.getMessage()
