"""Bad input, end to end: defective POS files -> extract/transform/profile stores -> the
account's outbox -> the sandbox.

Each corpus file (tests/corpus/cases, with its ``.expect.json``) becomes the one file of its
own CSV mapping (params prefixed per case, so every case's values land in distinct profile
attributes), all prepared for the same day; they feed one Target account, whose outbox joins
them into one row per profile, delivered together. Then: every expected
reject is in the ledger's ``rejects`` with ``file:line`` and the exact reason; every good
row's values are stored in the sandbox (read back over HTTP); the status report's CSVs carry
formula-like values only behind a ``'``.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import select

from connector import pipeline
from connector import reporting as reports
from connector.ledger import Ledger, Reject
from connector.mapping import load_mapping
from connector.sandbox.testing import running_sandbox

from . import invariant
from .harness import FakeClock, Figures, build_outboxes, deliver, make_clients
from .world import make_settings

CASES = Path(__file__).resolve().parents[1] / "corpus" / "cases"
DAY = "2026-03-01"
BAD = [
    "ragged_rows",
    "invalid_utf8",
    "utf16_bom",
    "utf8_bom",
    "empty",
    "header_only",
    "duplicate_columns",
    "formula_values",
    "identities",
    "bad_amounts",
]
FORMULA_FILE = (
    "id,name,amount\n"
    "=cmd|' /C calc'!A0,evil,not-a-number\n"
    "f1,=cmd|' /C calc'!A0,1.00\n"
    "@SUM(1),at,also-bad\n"
)


def _mapping(case: str, pos: Path) -> str:
    p = case.replace("_", "")
    return (
        f"name: {case}\nsource:\n  kind: csv\n  path: {pos.as_posix()}/{case}_{DAY}.csv\n"
        "  date_from: filename\ndestination: target\n"
        "identity:\n  column: id\n  type: thirdPartyId\n"
        f"params:\n  {p}Name: name\n"
        f"  {p}Amount:\n    column: amount\n    type: decimal\n    format: '0.00'\n"
    )


def test_bad_input_corpus_end_to_end(tmp_path: Path, figures_recorder) -> None:  # type: ignore[no-untyped-def]
    pos, maps = tmp_path / "pos", tmp_path / "mappings"
    pos.mkdir()
    maps.mkdir()
    expected: dict[str, dict] = {}
    for case in BAD:
        shutil.copyfile(CASES / f"{case}.csv", pos / f"{case}_{DAY}.csv")
        expected[case] = json.loads((CASES / f"{case}.expect.json").read_text())
        (maps / f"{case}.yaml").write_text(_mapping(case, pos))
    (pos / f"formula_rejects_{DAY}.csv").write_text(FORMULA_FILE)
    (maps / "formula_rejects.yaml").write_text(_mapping("formula_rejects", pos))
    names = [*BAD, "formula_rejects"]
    clock = FakeClock()
    with running_sandbox(processing_delay_s=0.0, seed=4, clock=clock) as sb:
        settings = make_settings(tmp_path, sb.url, mappings_dir=maps)
        ledger = Ledger(settings.ledger_url)
        ledger.create_all()
        clients = make_clients(settings, clock, ledger)
        try:
            mappings = [load_mapping(maps / f"{name}.yaml") for name in names]
            for mapping in mappings:
                pipeline.prepare(mapping, DAY, settings, ledger)
            (built,) = build_outboxes(settings, ledger, mappings)
            assert built.rows, built.summary()
            assert deliver(settings, ledger, clients, clock, Figures()) == 0
            report = invariant.check(ledger, settings, sandbox=sb, settled=True)
            with ledger.session() as s:
                rejects = [
                    (r.mapping, r.source_ref, r.identity, r.reason)
                    for r in s.scalars(select(Reject))
                ]
            settings.reports_dir.mkdir(parents=True, exist_ok=True)
            status = reports.write_report(
                ledger, "target", settings.reports_dir, settings.daily_quota, names
            )
            stored: dict[str, dict] = {}
            problems: list[str] = []
            for case in BAD:
                p = case.replace("_", "")
                want = {m["identity"]: m for m in expected[case]["mapped"]}  # last row wins
                for ident, row in want.items():
                    got = httpx.get(
                        f"{sb.url}/rest/v1/profiles/thirdPartyId/{quote(ident, safe='')}",
                        params={"client": settings.target.client_code},
                        timeout=10,
                    )
                    if got.status_code != 200:
                        problems.append(f"{case}/{ident!r}: not in the sandbox ({got.status_code})")
                        continue
                    attrs = {
                        k: v.get("value")
                        for k, v in got.json().get("profileAttributes", {}).items()
                    }
                    stored[f"{case}/{ident}"] = attrs
                    for param, value in ((f"{p}Name", row["name"]), (f"{p}Amount", row["amount"])):
                        if value not in (None, "") and attrs.get(param) != value:
                            problems.append(
                                f"{case}/{ident!r}: {param} stored {attrs.get(param)!r}, "
                                f"want {value!r}"
                            )
                for rej in expected[case]["rejects"]:
                    path = str(pos / f"{case}_{DAY}.csv")
                    ref = f"{path}:{rej['line']}" if rej.get("line") else path
                    hits = [r for r in rejects if r[0] == case and r[3] == rej["reason"]]
                    if not any(r[1] == ref for r in hits):
                        problems.append(f"{case}: reject {ref} {rej['reason']!r} not in ledger")
        finally:
            clients.close()
            ledger.dispose()
    assert report.ok, str(report)
    formula_rejects = [r for r in rejects if r[0] == "formula_rejects"]
    assert {r[1].rsplit(":", 1)[1] for r in formula_rejects} >= {"2", "4"}, formula_rejects
    assert all(r[3] for r in rejects), "a reject without a reason"
    for written in (status.csv_path, status.rejects_csv_path):
        assert written is not None and Path(written).exists()
        with Path(written).open(newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not cell.startswith(("=", "+", "-", "@")), f"{written}: {cell!r}"
    rejects_csv = Path(str(status.rejects_csv_path)).read_text(encoding="utf-8")
    assert "'=cmd|' /C calc'!A0" in rejects_csv
    assert not problems, "\n".join(problems)
    figures_recorder(
        "bad_input_e2e",
        {
            "scenario": "corpus of bad CSV files end to end",
            "files": len(names),
            "rows_delivered": report.delivered,
            "profiles": report.profiles,
            "profile_fates": report.profile_fates,
            "rejects": len(rejects),
            "profiles_read_back": len(stored),
            "invariant_held": report.ok,
        },
    )


GOOD = (
    'name: {name}\nsource: {{kind: csv, path: "x/*.csv"}}\ndestination: target\n'
    "identity: {{column: id, type: thirdPartyId}}\nparams: {params}\n"
)
BAD_MAPPINGS = {
    "syntax.yaml": ('name: broken\nsource: {kind: csv, path: "x/*.csv"\n  destination: [\n', "3"),
    "wrongtype.yaml": (GOOD.format(name="wrongtype", params="42"), "params"),
    "unknown.yaml": (GOOD.format(name="unknown", params="{a: b}") + "colour: blue\n", "colour"),
    "traversal.yaml": (GOOD.format(name="../x", params="{a: b}"), "name"),
}


def test_invalid_mappings_are_named_by_validate_and_build_definitions(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from connector.cli import main
    from connector.defs.definitions import MappingsInvalid, build_definitions

    maps = tmp_path / "mappings"
    maps.mkdir()
    (maps / "good.yaml").write_text(GOOD.format(name="good", params="{a: b}"))
    for file, (text, _field) in BAD_MAPPINGS.items():
        (maps / file).write_text(text)
    result = CliRunner().invoke(main, ["mappings", "validate", "--dir", str(maps)])
    assert result.exit_code == 1, result.output
    for file, (_text, field) in BAD_MAPPINGS.items():
        line = next((x for x in result.output.splitlines() if file in x), "")
        assert field in line, f"{file}: no error naming {field!r}: {result.output}"
    settings = make_settings(tmp_path, "http://127.0.0.1:9", mappings_dir=maps)
    try:
        build_definitions(settings)
    except MappingsInvalid as exc:
        for file in BAD_MAPPINGS:
            assert file in str(exc), str(exc)
    else:
        raise AssertionError("build_definitions accepted invalid mappings")


def test_missing_table_or_column_fails_that_mapping_only(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as con:
        con.execute("create table customers (customer_id text, email text, updated_at text)")
        con.execute("insert into customers values ('K1', 'k1@example.com', '2026-03-01 01:00')")
    maps = tmp_path / "mappings"
    maps.mkdir()

    def sql(name: str, table: str, column: str) -> Path:
        path = maps / f"{name}.yaml"
        path.write_text(
            f"name: {name}\nsource:\n  kind: sql\n  url: sqlite:///{db.as_posix()}\n"
            f"  table: {table}\n  cursor: updated_at\ndestination: target\n"
            "identity:\n  column: customer_id\n  type: thirdPartyId\n"
            f"params:\n  {name}Email: {column}\n"
        )
        return path

    clock = FakeClock()
    with running_sandbox(processing_delay_s=0.0, seed=4, clock=clock) as sb:
        settings = make_settings(tmp_path, sb.url, mappings_dir=maps)
        ledger = Ledger(settings.ledger_url)
        ledger.create_all()
        clients = make_clients(settings, clock, ledger)
        try:
            for name, table, column, words in (
                ("nocol", "customers", "e_mail", ("nocol", "e_mail", "email", "customer_id")),
                ("notable", "klanten", "email", ("notable", "klanten")),
            ):
                with pytest.raises(Exception) as info:
                    pipeline.prepare(load_mapping(sql(name, table, column)), DAY, settings, ledger)
                for word in words:
                    assert word in str(info.value), f"{word!r} not in: {info.value}"
            okmap = load_mapping(sql("okmap", "customers", "email"))
            pipeline.prepare(okmap, DAY, settings, ledger)
            build_outboxes(settings, ledger, [okmap])
            assert deliver(settings, ledger, clients, clock, Figures()) == 0
            got = httpx.get(
                f"{sb.url}/rest/v1/profiles/thirdPartyId/K1", params={"client": "rel"}, timeout=10
            )
        finally:
            clients.close()
            ledger.dispose()
    assert got.json()["profileAttributes"]["okmapEmail"]["value"] == "k1@example.com"
