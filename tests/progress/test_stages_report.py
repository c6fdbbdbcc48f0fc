"""The stages report their progress: extract, transform, profiles, outbox, submit and poll each
start, move on and end, with their rows and batches, against the real sandbox."""

from __future__ import annotations

from pathlib import Path

from connector import delivery, progress
from connector.outbox import build as outbox_build
from connector.pipeline import prepare
from connector.sandbox.testing import running_sandbox
from tests.delivery.helpers import make_ledger, make_settings, profiles, write_export, write_mapping
from tests.progress.recording import Recording

DAY = "2026-06-01"


def test_every_stage_of_a_sync_reports_its_progress(tmp_path: Path) -> None:
    recording = Recording()
    with running_sandbox(processing_delay_s=1.0) as sb:
        settings = make_settings(tmp_path, sb.url, chunk_rows=100, target={"max_batch_rows": 150})
        ledger = make_ledger(settings)
        mapping = write_mapping(settings, ["tier", "city"])
        write_export(settings, "crm", DAY, profiles(250))
        with progress.reporting_to(recording):
            prepare(mapping, DAY, settings, ledger)
            built = outbox_build.build(settings, ledger, "target")
            delivery.drain(settings, ledger, destination="target")
            delivery.poll(settings, ledger, destination="target", wait=True, timeout_s=60)
    assert recording.steps() == ["extract", "transform", "profiles", "outbox", "submit", "poll"]
    for step in recording.steps():
        kinds = [e.kind for e in recording.of(step)]
        assert kinds[0] == "start" and kinds[-1] == "end" and "start" not in kinds[1:], step
        assert not recording.of(step)[-1].failed

    # extract: a chunk of 100 rows at a time, so the count moves while it runs
    extract = recording.of("extract")
    assert [e.done for e in extract if e.kind == "update"] == [100, 200, 250]
    assert extract[-1].subject == f"crm {DAY}" and extract[-1].note == "250 mapped, 0 rejected"

    # outbox: 250 profiles in two batches of at most 150 rows, told as they are written
    outbox = recording.of("outbox")
    assert outbox[-1].subject == "target:demo"
    assert (outbox[-1].done, outbox[-1].total, outbox[-1].batches) == (250, 250, 2)
    assert [e.batches for e in outbox if e.kind == "update"][-2:] == [1, 2]
    assert len(built.batches) == 2

    submit = recording.of("submit")
    assert (submit[-1].done, submit[-1].total, submit[-1].batches) == (250, 250, 2)
    assert "submitted 2 batch(es), 250 rows" in submit[-1].note

    # poll: the batches were not final at once, so it waited for its next poll
    poll = recording.of("poll")
    assert poll[0].total == 2 and (poll[-1].done, poll[-1].total) == (2, 2)
    assert any(e.waits_for == "next poll" and e.until is not None for e in poll)
    assert "rows confirmed 250" in poll[-1].note
