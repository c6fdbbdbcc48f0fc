"""A hostile or broken destination: handled safely, bounded in memory and time, token kept.

Runs the real clients against a tiny local server (``hostile.py``) that answers what a broken
or malicious endpoint could: not XML, entity bombs, external entities, a 1 GB body (streamed,
never allocated on either side), a body that trickles in forever, redirects to another host,
and a status URL pointing at another host.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from connector.destinations.http import DeliveryError, ProtocolError, RejectedError
from connector.destinations.target import TargetClient
from connector.settings import TargetSettings

from .hostile import BILLION_LAUGHS, EXTERNAL_ENTITY, GB, hostile_server

TOKEN = "tok-HOSTILE-7f3a9c"


def client(url: str, **extra: Any) -> TargetClient:
    settings = TargetSettings(base_url=url, client_code="demo", token=TOKEN, timeout_s=2, **extra)
    return TargetClient(settings)


def batch_file(tmp_path: Path) -> Path:
    path = tmp_path / "b.batch"
    path.write_bytes(b"batch=thirdPartyId,tier\nC1,gold")
    return path


def bounded(fn: Any, seconds: float) -> tuple[BaseException | None, float]:
    """Run ``fn`` in a thread; (its exception, elapsed); fails if it outlives ``seconds``."""
    box: dict[str, BaseException] = {}

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            box["exc"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"still running after {seconds}s: not bounded in time"
    return box.get("exc"), elapsed


SUBMIT = "/m2/demo/v2/profile/batchUpdate"


@pytest.mark.parametrize(
    "body",
    [b"hello, not xml", b"<html><body>Gateway</body></html>", BILLION_LAUGHS, EXTERNAL_ENTITY],
    ids=["text", "html", "billion-laughs", "external-entity"],
)
def test_unreadable_submit_answers_are_protocol_errors(tmp_path: Path, body: bytes) -> None:
    with hostile_server() as srv:
        srv.answers[SUBMIT] = (200, {"Content-Type": "application/xml"}, body)
        tracemalloc.start()
        try:
            with client(srv.url) as c:
                exc, elapsed = bounded(lambda: c.submit(batch_file(tmp_path)), 10)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(exc, ProtocolError), exc
    assert "root:" not in str(exc) and "lollol" not in str(exc)
    assert elapsed < 5 and peak < 20 * 2**20, (elapsed, peak)


@pytest.mark.parametrize("with_length", [False, True], ids=["chunked", "content-length"])
def test_one_gigabyte_answer_is_cut_off(tmp_path: Path, with_length: bool) -> None:
    with hostile_server() as srv:
        headers = {"Content-Type": "application/xml"}
        if with_length:
            headers["Content-Length"] = str(GB)
        srv.answers[SUBMIT] = (200, headers, "stream-1gb")
        srv.answers["/m2/demo/v2/profile/batchStatus"] = (200, headers, "stream-1gb")
        tracemalloc.start()
        try:
            with client(srv.url) as c:
                exc, _ = bounded(lambda: c.submit(batch_file(tmp_path)), 20)
                exc2, _ = bounded(
                    lambda: c.batch_status(f"{srv.url}/m2/demo/v2/profile/batchStatus?batchId=1"),
                    60,
                )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(exc, ProtocolError) and "limit" in str(exc), exc
    assert isinstance(exc2, DeliveryError), exc2
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.0f} MiB while refusing a 1 GB answer"
    assert srv.sent_bytes < 256 * 2**20, "the client kept reading far past its limit"


def test_trickling_answer_is_bounded_in_time(tmp_path: Path) -> None:
    """A server sending one byte every 0.2 s never trips a per-read timeout; the total must."""
    with hostile_server() as srv:
        srv.answers[SUBMIT] = (200, {"Content-Type": "application/xml"}, "trickle")
        with client(srv.url) as c:
            exc, elapsed = bounded(lambda: c.submit(batch_file(tmp_path)), 30)
    assert isinstance(exc, DeliveryError), exc
    assert elapsed < 15


def test_redirect_to_another_host_is_not_followed(tmp_path: Path) -> None:
    with hostile_server() as srv, hostile_server("127.0.0.2") as other:
        other.answers["/"] = (200, {}, b"<response><success>true</success></response>")
        srv.answers[SUBMIT] = (302, {"Location": f"{other.url}/steal"}, b"")
        srv.answers["/status"] = (307, {"Location": f"{other.url}/steal"}, b"")
        with client(srv.url) as c:
            with pytest.raises(RejectedError, match="HTTP 302"):
                c.submit(batch_file(tmp_path))
            with pytest.raises(DeliveryError):
                c.batch_status(f"{srv.url}/status?batchId=1")
    assert other.seen == [], "a redirect was followed to another host"


@pytest.mark.parametrize("foreign", ["127.0.0.2", "127.1.0.1"])
def test_status_url_pointing_elsewhere_never_gets_the_token(foreign: str) -> None:
    status = b"<response><status>complete</status></response>"
    with hostile_server() as srv, hostile_server(foreign) as other:
        other.answers["/"] = (200, {}, status)
        srv.answers["/"] = (200, {}, status)
        with client(srv.url) as c:
            c.batch_status(f"{other.url}/m2/demo/v2/profile/batchStatus?batchId=1")
            c.batch_status(f"{srv.url}/m2/demo/v2/profile/batchStatus?batchId=1")
    assert other.seen and srv.seen
    assert all("authorization" not in {k.lower() for k in s.headers} for s in other.seen), (
        f"the bearer token was sent to {foreign}"
    )
    assert any(s.headers.get("Authorization") == f"Bearer {TOKEN}" for s in srv.seen)


def test_status_url_downgraded_to_http_never_gets_the_token() -> None:
    """Same host, but the configured base is https: no bearer token over cleartext."""
    with hostile_server() as srv:
        srv.answers["/"] = (200, {}, b"<response><status>complete</status></response>")
        https_base = srv.url.replace("http://", "https://")
        c = client(https_base)
        try:
            c.batch_status(f"{srv.url}/m2/demo/v2/profile/batchStatus?batchId=1")
        finally:
            c.close()
    assert srv.seen
    assert all("authorization" not in {k.lower() for k in s.headers} for s in srv.seen)


def test_status_url_with_another_scheme_is_refused() -> None:
    with client("http://127.0.0.1:9") as c:
        for url in ("file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"):
            with pytest.raises(ProtocolError, match="scheme"):
                c.batch_status(url)
