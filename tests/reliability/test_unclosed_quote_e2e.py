"""An unclosed quote in a POS export, end to end (issue: no row lost): a 10,000-row file
whose line 5,002 opens a quote that never closes. The line is a reject with its text and
reason; the 9,999 other rows are read, merged, sent and confirmed, each profile read back
from the sandbox; read = rejected + rows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from connector import pipeline
from connector.ledger import Ledger, Reject
from connector.mapping import load_mapping
from connector.sandbox.testing import running_sandbox

from . import invariant
from .harness import FakeClock, Figures, build_outboxes, deliver, make_clients
from .world import make_settings

DAY = "2026-03-01"
ROWS = 10_000
BAD_LINE = 5_002


def test_an_unclosed_quote_loses_its_line_only(tmp_path: Path) -> None:
    pos, maps = tmp_path / "pos", tmp_path / "mappings"
    pos.mkdir()
    maps.mkdir()
    lines = ["customer_id,store,amount,receipt_id"]
    lines += [f"Q{i:07d},S{i % 7},{i % 100}.50,R{i}" for i in range(ROWS)]
    lines[BAD_LINE - 1] = 'Q0005000,"S1,3.00,Rq'
    path = pos / f"pos_{DAY}.csv"
    path.write_text("\n".join(lines) + "\n")
    (maps / "pos.yaml").write_text(
        f"name: pos\nsource:\n  kind: csv\n  path: {pos.as_posix()}/pos_*.csv\n"
        "  date_from: filename\ndestination: target\n"
        "identity:\n  column: customer_id\n  type: thirdPartyId\n"
        "params:\n  lastStore: store\n  lastReceipt: receipt_id\n"
        "  lastAmount:\n    column: amount\n    type: decimal\n    format: '0.00'\n"
    )
    clock = FakeClock()
    with running_sandbox(processing_delay_s=0.0, seed=4, clock=clock) as sb:
        settings = make_settings(
            tmp_path, sb.url, mappings_dir=maps, target={"max_batch_rows": 5000}
        )
        ledger = Ledger(settings.ledger_url)
        ledger.create_all()
        clients = make_clients(settings, clock, ledger)
        try:
            mapping = load_mapping(maps / "pos.yaml")
            extract = pipeline.prepare(mapping, DAY, settings, ledger)[0]
            (built,) = build_outboxes(settings, ledger, [mapping])
            assert deliver(settings, ledger, clients, clock, Figures()) == 0
            report = invariant.check(ledger, settings, sandbox=sb, settled=True)
            with ledger.session() as s:
                rejects = [(r.source_ref, r.identity, r.reason) for r in s.scalars(select(Reject))]
        finally:
            clients.close()
            ledger.dispose()
    assert extract.counts["rows_in"] + extract.counts["rejected"] == ROWS, extract.counts
    assert extract.counts["rejected"] == 1, extract.counts
    assert [(ref, ident) for ref, ident, _ in rejects] == [(f"{path}:{BAD_LINE}", "Q0005000")]
    assert "quote" in rejects[0][2], rejects
    assert built.rows == ROWS - 1, built.summary()
    assert report.ok, str(report)
    assert report.profile_fates == {"landed": ROWS - 1}, str(report)
