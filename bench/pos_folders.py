"""POS export folders at scale for the ``pos_sensor`` case: many csv mappings with a small
export a day each, every one ingested (in the ledger's file registry as a run records it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

MAPPING_YAML = """name: {name}
source: {{kind: csv, path: "{folder}/pos_*.csv"}}
destination: target
identity: {{column: customer_id, type: thirdPartyId}}
params: {{amount_{name}: amount}}  # one owner per param at the account
"""


def export_text(shop: int, day: dt.date) -> str:
    """A day's export of one shop: a header and two receipts (about 70 bytes)."""
    return (
        "customer_id,amount\n"
        f"C{shop:03d}{day:%j}1,{day.day}.{shop % 100:02d}\n"
        f"C{shop:03d}{day:%j}2,{day.month}.50\n"
    )


def make_folders(root: Path, mappings: int, days: int, last_day: dt.date) -> Path:
    """``mappings`` folders under ``root / "exports"``, each with one export a day for the
    ``days`` days up to ``last_day``, and the mappings that read them (``shop000``,
    ``shop001``, ...) as YAML files in ``root / "mappings"``, which it returns."""
    mappings_dir = root / "mappings"
    mappings_dir.mkdir(parents=True, exist_ok=True)
    for shop in range(mappings):
        name = f"shop{shop:03d}"
        folder = root / "exports" / name
        folder.mkdir(parents=True, exist_ok=True)
        for back in range(days):
            day = last_day - dt.timedelta(days=back)
            (folder / f"pos_{day.isoformat()}.csv").write_text(export_text(shop, day))
        (mappings_dir / f"{name}.yaml").write_text(MAPPING_YAML.format(name=name, folder=folder))
    return mappings_dir


def add_export(mapping: Any, day: dt.date, shop: int = 0) -> Path:
    """One more export in the mapping's folder (a new file the sensor is to find)."""
    folder = Path(mapping.source.path).parent
    path = folder / f"pos_{day.isoformat()}.csv"
    path.write_text(export_text(shop, day))
    return path


def record_ingested(ledger: Any, mappings: list[Any], settings: Any) -> int:
    """Every listed export registered as ingested, with its checksum, size and ETag (what
    the extract stage records), in one transaction; the number of files."""
    from sqlalchemy import insert

    from connector.ledger import IngestedFile
    from connector.sources.csv import list_source_files
    from connector.sources.registry import file_sha256

    rows = []
    for mapping in mappings:
        for listed, day in list_source_files(mapping, settings):
            sha, size = file_sha256(listed.path)
            rows.append(
                {
                    "mapping": mapping.name,
                    "path": listed.path,
                    "sha256": sha,
                    "size": size,
                    "etag": listed.etag,
                    "partition": day,
                    "rows": 2,
                }
            )
    with ledger.session() as session:
        session.execute(insert(IngestedFile), rows)
    return len(rows)
