"""The vectorised typing of common shapes gives exactly what ``value_typer`` gives, or defers."""

from __future__ import annotations

import datetime as dt
import random
import re

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.mapping import ParamSpec, value_typer
from connector.transform.fast_decimal import _decimal_ready
from connector.transform.text import _is_ascii, apply_transforms, empty_to_null
from connector.transform.typed import _fast_typed, type_column

ZONES = [None, "Europe/Amsterdam", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata"]


def _expected(spec: ParamSpec, values: list[str | None]) -> tuple[list[str | None], list[bool]]:
    typer = value_typer(spec)
    out: list[str | None] = []
    bad: list[bool] = []
    for v in values:
        if v is None:
            out.append(None)
            bad.append(False)
            continue
        try:
            out.append(typer(v))
            bad.append(False)
        except ValueError:
            out.append(None)
            bad.append(True)
    return out, bad


def _datetimes(seed: int) -> list[str | None]:
    rng = random.Random(seed)
    values: list[str | None] = [None]
    # every quarter hour around DST changes of several zones, plus random moments
    for day in ("2025-03-30", "2025-10-26", "2025-04-06", "2025-09-07", "2025-04-05"):
        start = dt.datetime.fromisoformat(day) - dt.timedelta(hours=3)
        for q in range(0, 30 * 4):
            values.append((start + dt.timedelta(minutes=15 * q)).isoformat())
    for _ in range(3000):
        moment = dt.datetime(1990, 1, 1) + dt.timedelta(seconds=rng.randrange(60 * 365 * 86400))
        text = moment.isoformat()
        kind = rng.random()
        if kind < 0.2:
            text += rng.choice(["Z", "+02:00", "-03:30", "+05:45", "+14:00", "-12:00"])
        elif kind < 0.3:
            text = text[:10]
        values.append(text)
    values += [
        "2025-02-30T10:00:00",
        "2025-02-29",
        "2024-02-29T23:59:59",
        "2025-13-01T00:00:00",
        "2025-00-10T10:00:00",
        "2025-01-00",
        "2025-01-01T10:00:00+02:00:00",
        "2025-01-01T10:00:00+0200",
        "2025-01-01T10:00:00+",
        "2025-01-01T10:00:00-",
        "2025-01-01T10:00:00Z+01:00",
        "2025-01-01T24:00:00",
        "2025-01-01T10:00:00+24:00",
        "2025-01-01 10:00:00",
        "2025-01-01T10:00",
        "2025-01-01T10:00:00.123456",
        "0999-01-01T00:00:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-05:00",
        "1000-01-01T00:00:00+05:00",
        "1900-01-01T00:00:00",
        "tomorrow",
        "",
    ]
    return values


def _assert_typed_as_value_typer(spec: ParamSpec, values: list[str | None]) -> list[str | None]:
    """The column typing of ``values`` equals value_typer's, value by value; returns it."""
    typed, bad, _ = type_column(spec, pa.array(values, pa.string()))
    expected, expected_bad = _expected(spec, values)
    assert typed.to_pylist() == expected
    assert bad.tolist() == expected_bad
    return expected


@pytest.mark.parametrize("zone", ZONES)
def test_fast_datetimes_match_value_typer(zone: str | None) -> None:
    spec = ParamSpec(column="x", type="datetime", timezone=zone)
    values = [v for v in _datetimes(1) if v != ""]
    col = pa.array(values, pa.string())
    fast = _fast_typed(spec, col)
    assert fast is not None and fast.null_count < len(values) * 0.2  # the fast path did the bulk
    _assert_typed_as_value_typer(spec, values)


def _mutated(values: list[str], seed: int, count: int) -> list[str]:
    """Near misses of valid datetimes: a byte replaced, inserted or deleted, once or twice."""
    rng = random.Random(seed)
    alphabet = "0123456789-:TZ+ ./a\x00é"
    out = []
    for _ in range(count):
        chars = list(rng.choice(values))
        for _ in range(rng.randrange(1, 3)):
            at = rng.randrange(len(chars)) if chars else 0
            op = rng.random()
            if op < 0.5 and chars:
                chars[at] = rng.choice(alphabet)
            elif op < 0.75:
                chars.insert(at, rng.choice(alphabet))
            elif chars:
                del chars[at]
        out.append("".join(chars))
    return out


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "Asia/Kolkata"])
def test_near_miss_datetimes_are_typed_or_refused_as_value_typer_does(zone: str) -> None:
    # the fast path must not take a value value_typer refuses (it took "...:00+" as UTC)
    spec = ParamSpec(column="x", type="datetime", timezone=zone)
    valid = [v for v in _datetimes(5) if v]
    _assert_typed_as_value_typer(spec, _mutated(valid, 11, 4000))


def _decimals(seed: int) -> list[str | None]:
    rng = random.Random(seed)
    values: list[str | None] = [None]
    for _ in range(3000):
        whole = str(rng.randrange(10 ** rng.randrange(1, 19)))
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 6)))
        text = whole + ("." + frac if frac else "")
        if rng.random() < 0.1:
            text = rng.choice(["-", "+", "0", "00"]) + text
        values.append(text)
    values += [
        "0.005",
        "0.015",
        "1.5",
        "2.5",
        "-0.001",
        "-2.5",
        "999999999999999999.995",
        "1234567890123456789.5",
        "5.",
        ".5",
        "1e3",
        "1,5",
        "0.0000000000000000005",
        "7",
    ]
    return values


@pytest.mark.parametrize("fmt", [None, "0", "0.00", "0.000"])
def test_fast_decimals_match_value_typer(fmt: str | None) -> None:
    spec = ParamSpec(column="x", type="decimal", format=fmt)
    values = _decimals(2)
    col = pa.array(values, pa.string())
    fast = _fast_typed(spec, col)
    assert fast is not None and fast.null_count < len(values) * 0.2  # the fast path did the bulk
    _assert_typed_as_value_typer(spec, values)


def test_decimals_already_in_the_output_form_pass_through_unchanged() -> None:
    spec = ParamSpec(column="x", type="decimal", format="0.00")
    values = ["0.50", "10.00", "98368.03", None, "123456789012345678.99", "0.00"]
    assert _assert_typed_as_value_typer(spec, values) == values
    # one value that is not in that form sends the column through the exact path
    _assert_typed_as_value_typer(spec, [*values, "007.5"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.just(""), st.text(max_size=5)), max_size=40),
    st.integers(0, 40),
    st.integers(0, 40),
)
def test_empty_to_null_rebuilds_validity_only(values, start, length) -> None:  # type: ignore[no-untyped-def]
    col = pa.array(values, pa.string()).slice(start, length)
    got = empty_to_null(col)
    got.validate(full=True)
    assert got.to_pylist() == [None if v in (None, "") else v for v in col.to_pylist()]


decimal_text = st.one_of(
    st.none(),
    st.from_regex(r"[1-9]\d{0,5}\.\d{2}", fullmatch=True),  # already in the output form
    st.from_regex(r"[+-]?\d{1,6}(\.\d{0,4})?", fullmatch=True),
    st.sampled_from(["0.005", "0.00", "00.10", "1e3", ".5", "5.", "x", " 1.00"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(decimal_text, min_size=1, max_size=40))
def test_decimal_column_matches_value_typer_whatever_the_mix(values) -> None:  # type: ignore[no-untyped-def]
    spec = ParamSpec(column="x", type="decimal", format="0.00")
    _assert_typed_as_value_typer(spec, values)


iso_like = st.builds(
    lambda moment, suffix, cut, swaps: _mangle(moment.isoformat() + suffix, cut, swaps),
    st.datetimes(min_value=dt.datetime(900, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
        lambda m: m.replace(microsecond=0)
    ),
    st.sampled_from(["", "", "Z", "+02:00", "-03:30", "+23:59", "-00:00", "+24:00", "+05:60"]),
    st.sampled_from([None, None, None, 10, 13, 16, 19]),
    st.lists(
        st.tuples(
            st.integers(0, 24), st.sampled_from(["0", "9", "x", "/", ":", "T", " ", "é", "Z"])
        ),
        max_size=3,
    ),
)


def _mangle(text: str, cut: int | None, swaps: list[tuple[int, str]]) -> str:
    if cut is not None:
        text = text[:cut]
    for at, char in swaps:
        if at < len(text):
            text = text[:at] + char + text[at + 1 :]
    return text


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", None, "America/St_Johns"])
@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), iso_like), min_size=1, max_size=30),
    start=st.integers(0, 3),
)
def test_datetime_column_matches_value_typer_whatever_the_bytes(zone, values, start) -> None:  # type: ignore[no-untyped-def]
    """Any byte out of place, a cut value, an impossible date or offset, a year before 1000
    or after 9999 once converted, a multi-byte character of the same length: the column
    typing (fast where sure, Python elsewhere) equals value_typer, on a sliced array too."""
    spec = ParamSpec(column="x", type="datetime", timezone=zone)
    _assert_typed_as_value_typer(spec, values)
    col = pa.array([None, "2025-01-01T00:00:00", *values], pa.string()).slice(start)
    typed, bad, _ = type_column(spec, col)
    expected, expected_bad = _expected(spec, col.to_pylist())
    assert typed.to_pylist() == expected
    assert bad.tolist() == expected_bad


@pytest.mark.parametrize("fmt", [None, "0.00"])
def test_near_miss_decimals_are_typed_or_refused_as_value_typer_does(fmt: str | None) -> None:
    spec = ParamSpec(column="x", type="decimal", format=fmt)
    _assert_typed_as_value_typer(spec, _mutated([v for v in _decimals(4) if v], 12, 4000))


def _in_output_form(value: str | None, places: int) -> bool:
    pattern = rf"(0|[1-9][0-9]{{0,17}})\.[0-9]{{{places}}}"
    return value is None or re.fullmatch(pattern, value, flags=re.ASCII) is not None


ready_text = st.one_of(
    st.none(),
    st.from_regex(r"(0|[1-9][0-9]{0,19})\.[0-9]{1,4}", fullmatch=True),
    st.from_regex(r"0[0-9]{0,3}\.[0-9]{2}", fullmatch=True),  # leading zeros
    st.text(alphabet="0123456789.+-e ٣\x00", max_size=8),  # one '.', two, digits elsewhere
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ready_text, max_size=30), st.integers(1, 3), st.integers(0, 30), st.integers(0, 30))
def test_decimal_ready_is_the_output_form_regex(values, places, start, length) -> None:  # type: ignore[no-untyped-def]
    col = pa.array(values, pa.string()).slice(start, length)  # offsets not starting at 0
    got = _decimal_ready(col, places).tolist()
    assert got == [_in_output_form(v, places) for v in col.to_pylist()]


@pytest.mark.parametrize("transform", ["lower", "upper"])
def test_case_transforms_are_utf8_ones_whether_or_not_ascii(transform: str) -> None:
    utf8 = {"lower": pc.utf8_lower, "upper": pc.utf8_upper}[transform]
    ascii_only = pa.array(["Ab.C@Example.ORG", None, "", "x\x7fY"]).slice(1)
    mixed = pa.array(["ÆGIR@Example.org", "İstanbul", "straße", None])
    assert _is_ascii(ascii_only) and not _is_ascii(mixed)
    for col in (ascii_only, mixed):
        assert apply_transforms(col, [transform]).equals(utf8(col))
