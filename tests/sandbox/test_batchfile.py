"""The batch reader on its own: the parsing model of PROTOCOLS.md, rule by rule."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.sandbox.batchfile import BatchRejected, parse_batch


def rows(body: bytes) -> tuple[str, list[str], list[list[str]]]:
    parsed = parse_batch(body)
    return parsed.id_column, parsed.names, list(parsed.rows())


def test_plain_batch() -> None:
    assert rows(b"batch=pcId,a,b\n1,x,y\n2,,z") == (
        "pcId",
        ["a", "b"],
        [["1", "x", "y"], ["2", "", "z"]],
    )


def test_whitespace_around_fields_and_crlf_are_tolerated() -> None:
    body = b"batch=thirdPartyId , a ,\tb \r\n 1 , x ,y\t\r\n\r\n2,  , z \r\n"
    assert rows(body) == ("thirdPartyId", ["a", "b"], [["1", "x", "y"], ["2", "", "z"]])


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b"a+b", "a b"),
        (b"a%2Bb", "a+b"),
        (b"x%2Cy", "x,y"),
        (b"%0A%0D", "\n\r"),
        (b"%25%26%3D", "%&="),
        (b"%20edge%20", " edge "),  # encoded whitespace is not trimmed
        (b"caf%C3%A9", "caf\u00e9"),
        (b"caf%c3%a9", "caf\u00e9"),  # lower-case hex
        ("caf\u00e9".encode(), "caf\u00e9"),  # raw UTF-8 is UTF-8 too
        (b"%00nul%01", "\x00nul\x01"),  # control characters take the per-field path
        (b"a=b", "a=b"),
    ],
)
def test_values_are_decoded_like_form_values(raw: bytes, decoded: str) -> None:
    assert rows(b"batch=pcId,v\n1," + raw)[2] == [["1", decoded]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"batch=pcId,a\n1,50%", "invalid URL encoding"),
        (b"batch=pcId,a\n1,%zz", "invalid URL encoding"),
        (b"batch=pcId,a\n1,%C3", "invalid UTF-8"),
        (b"batch=pcId,a\n1,%FF", "invalid UTF-8"),
        (b"batch=pcId,a\n1,\xff", "invalid UTF-8"),
        (b"batch=pcId,a\n1,%00%FF", "invalid UTF-8"),
        (b"pcId,a\n1,x", "must begin with 'batch='"),
        (b"", "Batch is empty"),
        (b"batch=", "Batch is empty"),
        (b"batch=email,a\n1,x", "first column must be pcId or thirdPartyId"),
        (b"batch=pcId,a,,b\n1,x", "empty parameter name"),
        (b"batch=pcId,a,a\n1,x", "more than once"),
    ],
)
def test_whole_batch_rejections(body: bytes, message: str) -> None:
    with pytest.raises(BatchRejected, match=message):
        parse_batch(body)


def test_invalid_escape_rejects_even_when_other_rows_are_fine() -> None:
    body = b"batch=pcId,a\n" + b"".join(b"%d,ok\n" % i for i in range(100)) + b"101,100%\n"
    with pytest.raises(BatchRejected, match="line 102"):
        parse_batch(body)


def test_raw_ampersand_cuts_the_body() -> None:
    assert rows(b"batch=pcId,a\n1,x&2,y\n3,z")[2] == [["1", "x"]]
    assert len(parse_batch(b"batch=pcId,a\n1,x&2,y\n3,z")) == 1
    assert len(parse_batch(b"batch=pcId,a&\n1,x")) == 0  # header only: the service says empty


def test_one_line_sample_of_the_v2_docs() -> None:
    body = (
        b"batch=pcId, param1, param2, param3, param4 123, value1 124, value1,,, value4 "
        b"125,, value2 126, value1, value2, value3, value4"
    )
    assert rows(body) == (
        "pcId",
        ["param1", "param2", "param3", "param4"],
        [
            ["123", "value1"],
            ["124", "value1", "", "", "value4"],
            ["125", "", "value2"],
            ["126", "value1", "value2", "value3", "value4"],
        ],
    )


def test_inner_whitespace_is_kept_when_the_batch_has_line_breaks() -> None:
    assert rows(b"batch=pcId,a\n1,two words")[2] == [["1", "two words"]]


field = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(field, min_size=2, max_size=2), min_size=1, max_size=20))
def test_anything_escaped_once_survives(data: list[list[str]]) -> None:
    lines = ["thirdPartyId,a"] + [",".join(quote(v, safe="") for v in row) for row in data]
    parsed = parse_batch(("batch=" + "\n".join(lines)).encode())
    assert list(parsed.rows()) == data
