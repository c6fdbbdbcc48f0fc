"""map_chunk: text kept exactly, typed values strict, identity rules, row-level rejects."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.columns import IDENTITY, REJECT_COLUMNS, SEQ, SOURCE_REF
from connector.mapping import ParamSpec, parse_mapping, type_value
from connector.transform import ColumnMissing, map_chunk
from connector.transform.identities import _CONTROL, _PLUS, _SLASH, _byte_rules


def mapping(params: str, identity: str = "{column: id, type: thirdPartyId}", dest: str = "target"):
    return parse_mapping(
        f"name: m\nsource: {{kind: csv, path: x.csv}}\ndestination: {dest}\n"
        f"identity: {identity}\nparams:\n{params}",
        "m.yaml",
    )


def raw(**columns: list[str | None]) -> pa.Table:
    n = len(next(iter(columns.values())))
    return pa.table(
        {
            **{k: pa.array(v, pa.string()) for k, v in columns.items()},
            SOURCE_REF: pa.array([f"f.csv:{i + 2}" for i in range(n)]),
            SEQ: pa.array(range(n), pa.int64()),
        }
    )


def test_output_columns_and_text_kept_exactly() -> None:
    m = mapping("  b: b\n  a: a\n")
    values = ["  padded ", "NA", "null", "0012", "=SUM(A1)", "1e5", "", None, "line\nbreak"]
    out, rejects = map_chunk(m, raw(id=[f"c{i}" for i in range(9)], a=values, b=values))
    assert out.column_names == [IDENTITY, SOURCE_REF, SEQ, "b", "a"]
    assert out.column("a").to_pylist() == [*values[:6], None, None, values[8]]
    assert rejects.column_names == list(REJECT_COLUMNS) and rejects.num_rows == 0
    assert out.schema.field(SEQ).type == pa.int64()


def test_transforms_and_default() -> None:
    m = mapping(
        "  e: {column: e, transform: [strip, lower]}\n"
        "  u: {column: u, transform: upper}\n"
        "  h: {column: h, transform: [strip, lower, sha256]}\n"
        "  d: {column: d, default: unknown}\n"
    )
    out, _ = map_chunk(
        m, raw(id=["1", "2"], e=[" A@B.NL ", ""], u=["café", "x"], h=[" Me@X.com", ""], d=["", "x"])
    )
    rows = out.to_pylist()
    assert rows[0]["e"] == "a@b.nl" and rows[1]["e"] is None
    assert rows[0]["u"] == "CAFÉ"
    assert rows[0]["h"] == hashlib.sha256(b"me@x.com").hexdigest() and rows[1]["h"] is None
    assert [r["d"] for r in rows] == ["unknown", "x"]


def test_typed_values() -> None:
    m = mapping(
        "  n: {column: n, type: int}\n"
        '  a: {column: a, type: decimal, format: "0.00"}\n'
        "  b: {column: b, type: bool}\n"
        "  d: {column: d, type: date}\n"
        "  f: {column: f, type: date, format: '%d/%m/%Y'}\n"
        "  t: {column: t, type: datetime, timezone: Europe/Amsterdam}\n"
    )
    out, rejects = map_chunk(
        m,
        raw(
            id=["1", "2", "3"],
            n=["007", "-3", ""],
            a=["1.005", "2", "-0.5"],
            b=["Yes", "0", "TRUE"],
            d=["2026-11-19", "2026-11-19 23:30:00", "2026-11-19T23:30:00+00:00"],
            f=["2026-01-02", "", "2026-12-31"],
            t=["2026-11-19 10:00:00", "2026-11-19T10:00:00Z", "2026-07-01"],
        ),
    )
    assert rejects.num_rows == 0, rejects.to_pylist()
    rows = out.to_pylist()
    assert [r["n"] for r in rows] == ["7", "-3", None]
    assert [r["a"] for r in rows] == ["1.01", "2.00", "-0.50"]
    assert [r["b"] for r in rows] == ["true", "false", "true"]
    assert [r["d"] for r in rows] == ["2026-11-19", "2026-11-19", "2026-11-19"]
    assert [r["f"] for r in rows] == ["02/01/2026", None, "31/12/2026"]
    assert [r["t"] for r in rows] == [
        "2026-11-19T10:00:00+01:00",
        "2026-11-19T11:00:00+01:00",
        "2026-07-01T00:00:00+02:00",
    ]


def test_bad_value_rejects_whole_row_with_every_reason() -> None:
    m = mapping("  n: {column: n, type: int}\n  a: {column: a, type: decimal}\n  s: s\n")
    out, rejects = map_chunk(
        m, raw(id=["1", "2", "3"], n=["1", "x", "1.5"], a=["1", "1,5", "2"], s=["a", "b", "c"])
    )
    assert out.column(IDENTITY).to_pylist() == ["1"]
    got = [
        (r["source_ref"], r["identity"], r["param"], r["reason"], r["raw"])
        for r in rejects.to_pylist()
    ]
    assert got == [
        ("f.csv:3", "2", "n", "'x' is not an integer", "x"),
        ("f.csv:3", "2", "a", "'1,5' is not a decimal number", "1,5"),
        ("f.csv:4", "3", "n", "'1.5' is not an integer", "1.5"),
    ]


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        ("", "identity is empty"),
        (None, "identity is empty"),
        ("a+b", "thirdPartyId contains '+'"),
        ("a/b", "thirdPartyId contains '/'"),
        ("x" * 257, "longer than 256"),
        ("a\nb", "control character"),
    ],
)
def test_third_party_id_rules(identity: str | None, reason: str) -> None:
    m = mapping("  s: s\n")
    out, rejects = map_chunk(m, raw(id=[identity, "ok"], s=["1", "2"]))
    assert out.column(IDENTITY).to_pylist() == ["ok"]
    assert rejects.num_rows == 1 and reason in rejects.column("reason")[0].as_py()


def test_third_party_id_allows_commas_unicode_and_256_chars() -> None:
    m = mapping("  s: s\n")
    ids = ["a,b", "é&%=", "x" * 256]
    out, rejects = map_chunk(m, raw(id=ids, s=["1", "2", "3"]))
    assert out.column(IDENTITY).to_pylist() == ids and rejects.num_rows == 0


def test_pcid_rules() -> None:
    m = mapping("  s: s\n", identity="{column: id, type: pcId}")
    out, rejects = map_chunk(
        m, raw(id=["1436187396849-250353.03_03", "a b", "x/y"], s=["1", "2", "3"])
    )
    assert out.column(IDENTITY).to_pylist() == ["1436187396849-250353.03_03"]
    assert rejects.num_rows == 2


def test_hashed_identity() -> None:
    m = mapping(
        "  s: s\n", identity="{column: id, type: thirdPartyId, transform: [strip, lower, sha256]}"
    )
    out, _ = map_chunk(m, raw(id=[" Me@X.com "], s=["1"]))
    assert out.column(IDENTITY)[0].as_py() == hashlib.sha256(b"me@x.com").hexdigest()


def test_profile_size_limit_counts_url_encoded_bytes() -> None:
    m = mapping("  a: a\n")
    # "a" (1) + value: 10 x "é" = 20 bytes -> 60 encoded; 10 x "&" -> 30
    out, rejects = map_chunk(m, raw(id=["1", "2"], a=["é" * 10, "&" * 10]), max_profile_bytes=40)
    assert out.column(IDENTITY).to_pylist() == ["2"]
    assert "61 bytes URL-encoded (limit 40)" in rejects.column("reason")[0].as_py()


def test_missing_column_is_clear() -> None:
    m = mapping("  city: {column: City}\n")
    with pytest.raises(
        ColumnMissing, match=r"m: params.city: column 'City' not in source \(have: id, city\)"
    ):
        map_chunk(m, raw(id=["1"], city=["x"]))


def test_copernica_identity() -> None:
    m = mapping("  s: s\n", identity="{column: id, type: customerid}", dest="copernica")
    out, rejects = map_chunk(m, raw(id=["a+b/c", ""], s=["1", "2"]))
    assert out.column(IDENTITY).to_pylist() == ["a+b/c"] and rejects.num_rows == 1


# -- properties -----------------------------------------------------------------------------


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-(10**12), max_value=10**12
    )
)
def test_decimal_round_trip(value: Decimal) -> None:
    spec = ParamSpec(column="x", type="decimal", format="0.00")
    text = type_value(spec, format(value, "f"))
    assert Decimal(text) == value.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert len(text.partition(".")[2]) == 2


@given(st.dates(min_value=dt.date(1, 1, 1)))
def test_date_round_trip(value: dt.date) -> None:
    assert type_value(ParamSpec(column="x", type="date"), value.isoformat()) == value.isoformat()


@given(st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2100, 1, 1)))
def test_datetime_round_trip(value: dt.datetime) -> None:
    spec = ParamSpec(column="x", type="datetime", timezone="Europe/Amsterdam")
    out = dt.datetime.fromisoformat(type_value(spec, value.isoformat()))
    # same instant (compared as timestamps: PEP 495 makes an ambiguous local time, such as
    # 1987-09-27T02:00 in Amsterdam, unequal to any other zone's datetime)
    assert out.timestamp() == value.replace(tzinfo=ZoneInfo("Europe/Amsterdam")).timestamp()
    assert out.utcoffset() is not None


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_int_round_trip(value: int) -> None:
    assert type_value(ParamSpec(column="x", type="int"), str(value)) == str(value)


@settings(max_examples=50)
@given(st.lists(st.text(), min_size=1, max_size=20))
def test_string_values_survive_exactly(values: list[str]) -> None:
    m = mapping("  v: v\n")
    out, _ = map_chunk(m, raw(id=[f"i{i}" for i in range(len(values))], v=values))
    assert out.column("v").to_pylist() == [v if v != "" else None for v in values]


def _third_party_id_reason(value: str | None) -> str | None:
    """The rules of a thirdPartyId, one value at a time: the first broken one."""
    if not value:
        return "identity is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "identity contains a control character"
    if "+" in value:
        return "thirdPartyId contains '+' (not allowed)"
    if "/" in value:
        return "thirdPartyId contains '/' (not allowed)"
    if len(value) > 256:
        return "thirdPartyId is longer than 256 characters"
    return None


identity_text = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(["a", "é", "+", "/", "\n", "\x00", "\x7f", ",", " "])),
    st.integers(250, 260).map(lambda k: "é" * k),  # more bytes than 256, chars either side
)


@settings(max_examples=150, deadline=None)
@given(st.lists(identity_text, min_size=1, max_size=25), st.integers(0, 3))
def test_identity_rules_row_by_row_on_a_sliced_chunk(ids, start) -> None:  # type: ignore[no-untyped-def]
    """The identity rules, checked on the chunk's bytes, give each row the reason the rules
    give that value alone, even where the chunk is a slice of a larger one."""
    ids = ["x+y", "\x01", *ids]
    table = raw(id=ids, s=["1"] * len(ids)).slice(start)
    out, rejects = map_chunk(mapping("  s: s\n"), table)
    kept = ids[start:]
    expected = [(f"f.csv:{i + 2}", _third_party_id_reason(v)) for i, v in enumerate(ids)][start:]
    got = dict(zip(rejects.column("source_ref").to_pylist(), rejects.column("reason").to_pylist()))
    assert got == {ref: reason for ref, reason in expected if reason}
    assert out.column(IDENTITY).to_pylist() == [
        v for v in kept if _third_party_id_reason(v) is None
    ]


def test_identity_byte_rules_on_a_slice_read_only_its_own_bytes() -> None:
    ident = pa.array(["a/b", "ok", "c+d", None, "e\x7f", "f/"], pa.string()).slice(1, 4)
    found = _byte_rules(ident)
    assert found is not None
    assert found[_PLUS].tolist() == [False, True, False, False]
    assert found[_CONTROL].tolist() == [False, False, False, True]
    assert found[_SLASH].tolist() == [False, False, False, False]  # both are outside the slice
