"""Pure parsing, retry timing, scrubbing and selectors (no network; the call limit:
``tests/delivery/test_call_limit.py``)."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from connector.destinations import target_answers as target
from connector.destinations.copernica import SelectorError, build_selector
from connector.destinations.http import (
    ProtocolError,
    RejectedError,
    RetryPolicy,
    parse_retry_after,
    scrub,
)

SUCCESS_V1 = b"""<response>
    <success>true</success>
    <batchStatus>http://mboxedge45.tt.omtrdc.net/m2/demo/profile/batchStatus?batchId=demo-1701473848678-13029383</batchStatus>
    <message>Batch submitted for processing</message>
</response>
"""
LEGACY_V2_RAW_AMP = (
    b"<response><success>true</success><batchStatus>http://mboxedge19.tt.omtrdc.net/m2/demo/v2/"
    b"profile/batchStatus?batchId=demo-1845664501&m2Node=00</batchStatus>"
    b"<message>Batch submitted for processing</message></response>"
)
LEGACY_V2_ESCAPED = LEGACY_V2_RAW_AMP.replace(b"&m2Node", b"&amp;m2Node")
V1_MBOXPC = (
    b"<response><success>true</success><batchStatus>http://mboxedge19.tt.omtrdc.net/m2/fedex/"
    b"profile/batchStatus?batchId=fedex-1470380971&amp;mboxPC=0000000000000-000000.19_05"
    b"</batchStatus><message>ok</message></response>"
)


@pytest.mark.parametrize(
    ("body", "batch_id", "url_end"),
    [
        (SUCCESS_V1, "demo-1701473848678-13029383", "batchId=demo-1701473848678-13029383"),
        (LEGACY_V2_RAW_AMP, "demo-1845664501", "batchId=demo-1845664501&m2Node=00"),
        (LEGACY_V2_ESCAPED, "demo-1845664501", "batchId=demo-1845664501&m2Node=00"),
        (V1_MBOXPC, "fedex-1470380971", "&mboxPC=0000000000000-000000.19_05"),
        (b"\n\n  " + SUCCESS_V1 + b"\n", "demo-1701473848678-13029383", "13029383"),
    ],
)
def test_submit_answers(body: bytes, batch_id: str, url_end: str) -> None:
    got = target.parse_submit_response(body)
    assert got.batch_id == batch_id
    assert got.status_url.endswith(url_end)


def test_success_false_is_typed_with_message() -> None:
    body = (
        b"<response><success>false</success><batchStatus></batchStatus>"
        b"<message>Unexpected error</message></response>"
    )
    with pytest.raises(RejectedError, match="Unexpected error"):
        target.parse_submit_response(body)


@pytest.mark.parametrize(
    "body",
    [
        b"true http://x/m2/demo/profile/batchStatus?batchId=1 Batch submitted",
        b"<html><body>Bad gateway",
        b"",
        b'{"success": true}',
        b"<response><success>true</success></response>",  # no status URL
    ],
)
def test_unreadable_answers_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        target.parse_submit_response(body)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<response><success>true</success><message>&lol3;</message></response>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><response><success>&x;</success></response>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_hostile_xml_is_refused(body: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"XML guard|well-formed"):
        target.parse_submit_response(body)
    with pytest.raises(ProtocolError):
        target.parse_status_response(body)


def test_status_counts_v1() -> None:
    body = b"""<response>
    <batchId>demo-1701473848678-13029383</batchId>
    <status>complete</status>
    <batchSize>1</batchSize>
    <consumedCount>1</consumedCount>
    <successfulUpdates>1</successfulUpdates>
    <profilesNotFound>0</profilesNotFound>
    <failedUpdates>0</failedUpdates>
</response>"""
    st = target.parse_status_response(body)
    assert (st.status, st.batch_size, st.successful, st.not_found, st.failed) == (
        "complete",
        1,
        1,
        0,
        0,
    )
    assert st.is_final and st.rows == {}


def test_status_rows_v2() -> None:
    body = b"""<response><batchId>demo-1845664501</batchId><status>complete</status>
  <batchSize>164</batchSize>
  <profile><id>1436187396849-250353.03_03</id><status>failed</status></profile>
  <profile><id>a</id><status>success</status></profile>
  <profile><id>b</id><status>error</status></profile>
  <profile><id>c</id><status>pending</status></profile>
</response>"""
    st = target.parse_status_response(body)
    assert st.rows == {
        "1436187396849-250353.03_03": "failed",
        "a": "success",
        "b": "failed",
        "c": "pending",
    }


@pytest.mark.parametrize(
    ("word", "final"), [("complete", True), ("incomplete", False), ("stuck", True)]
)
def test_status_words(word: str, final: bool) -> None:
    body = f"<response><batchId>x</batchId><status> {word} </status></response>".encode()
    assert target.parse_status_response(body).is_final is final


def test_unknown_status_word_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="unknown batch status"):
        target.parse_status_response(b"<response><status>weird</status></response>")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://e/m2/d/profile/batchStatus?batchId=1",
            "http://e/m2/d/profile/batchStatus?batchId=1&showDetails=true",
        ),
        ("http://e/s?batchId=1&m2Node=00", "http://e/s?batchId=1&m2Node=00&showDetails=true"),
        ("http://e/s?batchId=1&showDetails=true", "http://e/s?batchId=1&showDetails=true"),
        ("http://e/s", "http://e/s?showDetails=true"),
    ],
)
def test_show_details_keeps_the_url(url: str, expected: str) -> None:
    assert target.with_show_details(url) == expected


def test_profile_json() -> None:
    body = (
        b'{"client":"demo","visitorId":"v","profileAttributes":'
        b'{"tier":{"value":"gold","modifiedAt":"x"},"profile.city":{"value":"A, B"}}}'
    )
    assert target.parse_profile(body) == {"tier": "gold", "city": "A, B"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        (None, None),
        ("", None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    now = dt.datetime(2015, 10, 21, 7, 28, 0, tzinfo=dt.UTC)
    assert parse_retry_after(value, now) == seconds


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=1, max_delay_s=8, rng=random.Random(1))
    delays = [policy.delay(n) for n in range(1, 8)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert max(delays[4:]) <= 8 and delays[0] <= 1
    assert policy.delay(1, retry_after=30) == 30


def test_scrub_masks_tokens() -> None:
    text = "GET https://api.copernica.com/v3/database/1/profiles?fields%5B%5D=a&access_token=SECRET123&x=1"
    assert "SECRET123" not in scrub(text)
    assert "SECRET123" not in scrub("Authorization: Bearer SECRET123")
    assert "abc" not in scrub("anything abc here", ("abc",))


@pytest.mark.parametrize("value", ["4567", "50%_off", "a_b", "john@example.com", "x==y"])
def test_selector_exact_match(value: str) -> None:
    assert build_selector("customerid", "customerid", value) == f"customerid=={value}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "1"),
        ("customerid", ""),
        ("customerid", " 1"),
        ("customerid", "~1"),
        ("customerid", "=1"),
    ],
)
def test_selector_that_may_match_many_is_refused(field: str, value: str) -> None:
    with pytest.raises(SelectorError):
        build_selector(field, "customerid", value)
