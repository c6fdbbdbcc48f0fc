"""Client behaviour against a real local HTTP server with canned answers (no mocked transports)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from pydantic import SecretStr

from connector.delivery.call_limit import LedgerCallLimiter
from connector.destinations.copernica import CopernicaClient
from connector.destinations.http import (
    AmbiguousSubmitError,
    NotFoundError,
    ProtocolError,
    RejectedError,
    RetriesExhausted,
    RetryPolicy,
)
from connector.destinations.target import TargetClient
from connector.ledger import Ledger
from connector.settings import CopernicaSettings, TargetSettings

from .conftest import drop, huge, reply, slow

OK = (
    b"<response>\n  <success>true</success>\n  <batchStatus>http://{host}/m2/demo/v2/profile/"
    b"batchStatus?batchId=demo-1&m2Node=00</batchStatus>\n  <message>Batch submitted for processing"
    b"</message>\n</response>"
)


def fast_retry(attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=attempts,
        base_delay_s=0.01,
        max_delay_s=0.05,
        max_total_s=5,
        rng=random.Random(0),
    )


def make_target(url: str, **kw) -> TargetClient:  # type: ignore[no-untyped-def]
    settings = TargetSettings(
        base_url=url, client_code="demo", timeout_s=kw.pop("timeout_s", 2.0), **kw
    )
    return TargetClient(settings, retry=fast_retry())


@pytest.fixture
def batch_file(tmp_path: Path) -> Path:
    path = tmp_path / "b.batch"
    path.write_bytes(
        b"batch=thirdPartyId,tier\n" + b"".join(b"id%d,gold\n" % i for i in range(20000))
    )
    return path


def ok_body(canned) -> bytes:  # type: ignore[no-untyped-def]
    return OK.replace(b"{host}", canned.url.removeprefix("http://").encode())


def test_submit_streams_the_file_with_headers(canned, batch_file: Path) -> None:
    canned.add(reply(200, ok_body(canned)))
    with make_target(canned.url, token=SecretStr("tok")) as client:
        result = client.submit(batch_file)
    assert result.batch_id == "demo-1"
    assert result.status_url.endswith("batchId=demo-1&m2Node=00")
    seen = canned.seen[0]
    assert seen.method == "POST" and seen.path == "/m2/demo/v2/profile/batchUpdate"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.headers["authorization"] == "Bearer tok"
    assert seen.headers["content-length"] == str(batch_file.stat().st_size)
    assert seen.body == batch_file.read_bytes()


def test_v1_path(canned, batch_file: Path) -> None:
    canned.add(reply(200, ok_body(canned)))
    with make_target(canned.url, api_version="v1") as client:
        client.submit(batch_file)
    assert canned.seen[0].path == "/m2/demo/profile/batchUpdate"


def test_throttle_then_success_honours_retry_after(canned, batch_file: Path) -> None:
    canned.add(
        reply(429, b"", {"Retry-After": "0"}), reply(503), reply(500), reply(200, ok_body(canned))
    )
    with make_target(canned.url) as client:
        assert client.submit(batch_file).batch_id == "demo-1"
    assert len(canned.seen) == 4


def test_retry_after_seconds_are_waited(canned, batch_file: Path) -> None:
    canned.add(reply(429, b"", {"Retry-After": "7"}), reply(200, ok_body(canned)))
    slept: list[float] = []
    settings = TargetSettings(base_url=canned.url, timeout_s=2)
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05, max_total_s=60)
    with TargetClient(settings, retry=policy, sleep=slept.append) as client:
        client.submit(batch_file)
    assert slept == [7]


def test_throttling_forever_gives_up_without_ambiguity(canned, batch_file: Path) -> None:
    canned.add(reply(503))
    with make_target(canned.url) as client, pytest.raises(RetriesExhausted) as info:
        client.submit(batch_file)
    assert not info.value.processed_possible
    assert len(canned.seen) == 4


@pytest.mark.parametrize(
    "answer",
    [
        reply(504),
        reply(500, b"<response><batchId>demo-9</batchId></response>"),
        drop,  # connection closed after the body was read
    ],
)
def test_ambiguous_submit_is_not_retried(canned, batch_file: Path, answer) -> None:  # type: ignore[no-untyped-def]
    canned.add(answer)
    with make_target(canned.url) as client, pytest.raises(AmbiguousSubmitError):
        client.submit(batch_file)
    assert len(canned.seen) == 1


def test_read_timeout_after_sending_is_ambiguous(canned, batch_file: Path) -> None:
    canned.add(slow(1.5, reply(200, ok_body(canned))))
    with make_target(canned.url, timeout_s=0.5) as client, pytest.raises(AmbiguousSubmitError):
        client.submit(batch_file)
    assert len(canned.seen) == 1


def test_connect_error_is_retried_then_gives_up(batch_file: Path) -> None:
    with make_target("http://127.0.0.1:9") as client, pytest.raises(RetriesExhausted) as info:
        client.submit(batch_file)
    assert not info.value.processed_possible


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (reply(200, b"<html>maintenance</html>"), ProtocolError),
        (reply(200, b"Batch submitted"), ProtocolError),
        (huge(5 * 1024 * 1024), ProtocolError),
        (
            reply(
                200,
                b"<response><success>false</success><message>Unexpected error</message></response>",
            ),
            RejectedError,
        ),
        (reply(403, b"<response>denied</response>"), RejectedError),
    ],
)
def test_bad_answers_are_typed(canned, batch_file: Path, answer, error) -> None:  # type: ignore[no-untyped-def]
    canned.add(answer)
    with make_target(canned.url) as client, pytest.raises(error):
        client.submit(batch_file)


def test_status_follows_the_url_as_given(canned) -> None:
    body = (
        b"<response><batchId>demo-1</batchId><status>complete</status><batchSize>3</batchSize>"
        b"<profile><id>a</id><status>failed</status></profile></response>"
    )
    canned.add(reply(502), reply(200, body))
    with make_target("http://other.example:1") as client:
        st = client.batch_status(
            f"{canned.url}/m2/demo/v2/profile/batchStatus?batchId=demo-1&m2Node=00"
        )
    assert st.status == "complete" and st.rows == {"a": "failed"}
    assert (
        canned.seen[-1].path
        == "/m2/demo/v2/profile/batchStatus?batchId=demo-1&m2Node=00&showDetails=true"
    )


def test_token_is_not_sent_to_a_foreign_status_host(canned) -> None:
    canned.add(reply(200, b"<response><status>incomplete</status></response>"))
    with make_target("http://target.example.net:1", token=SecretStr("tok")) as client:
        client.batch_status(f"{canned.url}/s?batchId=1")
    assert "authorization" not in canned.seen[0].headers


def test_status_404_is_not_found(canned) -> None:
    canned.add(reply(404, b"<response><success>false</success></response>"))
    with make_target(canned.url) as client, pytest.raises(NotFoundError):
        client.batch_status(f"{canned.url}/s?batchId=1")


def test_limiter_is_shared_by_submit_and_status(canned, batch_file: Path, tmp_path: Path) -> None:
    canned.add(reply(200, ok_body(canned)))
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.upgrade()
    limiter = LedgerCallLimiter(ledger, "target:demo", 2, clock=lambda: now[0], sleep=sleep)
    settings = TargetSettings(base_url=canned.url, timeout_s=2)
    with TargetClient(settings, limiter=limiter, retry=fast_retry()) as client:
        client.submit(batch_file)
        canned.answers[:] = [reply(200, b"<response><status>incomplete</status></response>")]
        client.batch_status(f"{canned.url}/s?batchId=1")
        client.batch_status(f"{canned.url}/s?batchId=1")
    assert waits == [60.0]


def test_profile_fetch(canned) -> None:
    canned.add(
        reply(200, b'{"profileAttributes": {"tier": {"value": "gold"}}}'),
        reply(404, b'{"status": 404, "message": "No profile found"}'),
    )
    with make_target(canned.url) as client:
        assert client.fetch_profile("a/b c", "thirdPartyId") == {"tier": "gold"}
        assert client.fetch_profile("x", "pcId") is None
    assert canned.seen[0].path == "/rest/v1/profiles/thirdPartyId/a%2Fb%20c?client=demo"
    assert canned.seen[1].path == "/rest/v1/profiles/x?client=demo"


def test_tls_off_warns(caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.WARNING):
        make_target("https://127.0.0.1:9", verify_tls=False).close()
    assert "TLS certificate verification is OFF" in caplog.text


# -- Copernica ------------------------------------------------------------------------------


def make_copernica(url: str, version: str = "v3") -> CopernicaClient:
    settings = CopernicaSettings(
        base_url=url + f"/{version}",
        database="db 1",
        access_token=SecretStr("SECRET-TOKEN"),
        api_version=version,
        timeout_s=1,
        concurrency=4,
    )
    return CopernicaClient(settings, match_field="customerid", retry=fast_retry())


def test_copernica_put(canned) -> None:
    canned.add(reply(201, b"", {"X-Created": "12"}))
    with make_copernica(canned.url) as client:
        res = client.put_profile("50%_off & more", {"city": "Zürich"})
    assert res.ok and res.created
    seen = canned.seen[0]
    assert seen.method == "PUT"
    assert seen.path.startswith("/v3/database/db%201/profiles?")
    assert (
        "fields%5B%5D=customerid%3D%3D50%25_off+%26+more" in seen.path
        or "fields[]=customerid%3D%3D50%25_off" in seen.path
    )
    assert "create=1" in seen.path and "access_token=SECRET-TOKEN" in seen.path
    assert seen.body.decode() == '{"fields": {"city": "Zürich", "customerid": "50%_off & more"}}'


def test_copernica_v4_bearer(canned) -> None:
    canned.add(reply(204))
    with make_copernica(canned.url, "v4") as client:
        assert client.put_profile("1", {"a": "b"}).ok
    assert canned.seen[0].headers["authorization"] == "Bearer SECRET-TOKEN"
    assert "access_token" not in canned.seen[0].path


def test_copernica_303_counts_as_done(canned) -> None:
    canned.add(reply(303, b"", {"Location": "/v3/profile/5"}))
    with make_copernica(canned.url) as client:
        assert client.put_profile("1", {"a": "b"}).ok
    assert len(canned.seen) == 1


def test_copernica_errors_never_show_the_token(canned, caplog) -> None:  # type: ignore[no-untyped-def]
    canned.add(reply(400, b'{"error": {"message": "Invalid access token SECRET-TOKEN"}}'))
    with caplog.at_level(logging.DEBUG), make_copernica(canned.url) as client:
        res = client.put_profile("1", {"a": "b"})
        assert not res.ok and "Invalid access token" in (res.error or "")
        canned.answers[:] = [reply(503)]
        res2 = client.put_profile("1", {"a": "b"})
        assert not res2.ok
        down = CopernicaClient(
            CopernicaSettings(
                base_url="http://127.0.0.1:9/v3", access_token=SecretStr("SECRET-TOKEN")
            ),
            match_field="customerid",
            retry=fast_retry(2),
        )
        res3 = down.put_profile("1", {"a": "b"})
    for text in (res.error, res2.error, res3.error, caplog.text):
        assert "SECRET-TOKEN" not in (text or "")
    assert res3.error and "ConnectError" in res3.error


def test_copernica_put_many_bounded(canned) -> None:
    canned.add(slow(0.05, reply(204)))
    with make_copernica(canned.url) as client:
        results = client.put_many((str(i), {"a": str(i)}) for i in range(20))
    assert all(r.ok for r in results) and len(canned.seen) == 20
