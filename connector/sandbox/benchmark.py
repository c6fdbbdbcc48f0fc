"""How fast the sandbox takes a full-size batch: ``python -m connector.sandbox.benchmark [rows]``.

``run(rows)`` posts one v2 batch of ``rows`` rows (~100 bytes each, so 500,000 rows is just
under the 50 MB cap; some values need %-escapes, some ``+``) to an in-process sandbox over
HTTP and waits until its status is ``complete``. Peak RSS is the whole process's (client
included), from ``getrusage``.
"""

from __future__ import annotations

import json
import re
import resource
import sys
import time
from typing import Any

import httpx

from connector.sandbox.testing import running_sandbox

NAMES = ("email", "firstName", "city", "tier", "points", "lastPurchase")


def make_batch(rows: int) -> bytes:
    """A thirdPartyId batch with realistic, partly escaped values (~100 bytes per row)."""
    header = "batch=thirdPartyId," + ",".join(NAMES)
    cities = ("Amsterdam", "Den+Haag", "S%C3%A3o+Paulo", "Z%C3%BCrich", "Rotterdam")
    tiers = ("gold", "silver", "bronze", "")
    lines = [header]
    for i in range(rows):
        lines.append(
            f"crm-{i:09d},customer.{i:07d}%40example.com,Name{i % 997:04d},"
            f"{cities[i % 5]},{tiers[i % 4]},{i % 10_000},2026-11-{1 + i % 28:02d}T10%3A00%3A00"
        )
    return "\n".join(lines).encode()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run(rows: int = 500_000) -> dict[str, Any]:
    """Post one batch of ``rows`` rows and time it until complete; returns the figures."""
    body = make_batch(rows)
    with running_sandbox(processing_delay_s=0.0) as sandbox, httpx.Client(timeout=600) as http:
        started = time.perf_counter()
        response = http.post(sandbox.target_url("bench", "v2"), content=body)
        accepted = time.perf_counter()
        match = re.search(r"<batchStatus>(.*?)</batchStatus>", response.text)
        if response.status_code != 200 or not match or not match.group(1):
            raise RuntimeError(f"batch refused: {response.status_code} {response.text[:300]}")
        status_url = match.group(1).replace("&amp;", "&")
        sandbox.wait_idle()
        status = http.get(status_url + "&showDetails=true").text
        done = time.perf_counter()
        if "<status>complete</status>" not in status or f"<successfulUpdates>{rows}<" not in status:
            raise RuntimeError(f"batch not fully applied: {status[:300]}")
    total = done - started
    return {
        "rows": rows,
        "bytes": len(body),
        "accept_s": round(accepted - started, 3),
        "total_s": round(total, 3),
        "rows_per_s": round(rows / total),
        "mb_per_s": round(len(body) / 1e6 / total, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 500_000), indent=2))
