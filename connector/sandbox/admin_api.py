"""Inspection and control endpoints for tests and people (never faulted, never metered).

- ``GET /``                  short JSON summary (clients, batches, profile counts, faults)
- ``GET /_sandbox/state``    full JSON state (accepted batches with sha256, quota, calls, faults)
- ``GET /_sandbox/faults``   current fault settings; ``POST`` a JSON object to change some
- ``POST /_sandbox/clock``   ``{"advance": seconds}`` moves the sandbox clock forward
- ``POST /_sandbox/wait``    returns once every accepted batch has been applied
- ``GET /_sandbox/copernica/schema``   every Copernica database's declaration (typed fields)
- ``POST /_sandbox/copernica/schema``  declare databases (``copernica_schema.py``'s JSON): new
  ones are made, existing ones (same name, any casing) get the new fields; profiles are kept
- ``POST /_sandbox/copernica/reset``   forget every Copernica database and profile, then
  declare the configured ones again (the state of a fresh sandbox)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.sandbox.copernica_schema import SchemaError, parse_schema
from connector.sandbox.target_store import iso

if TYPE_CHECKING:
    from connector.sandbox.state import Sandbox


def routes(sandbox: Sandbox) -> list[Route]:
    async def summary(request: Request) -> Response:
        state = sandbox.snapshot()
        target = {
            client: {
                "batches": len(info["batches"]),
                "rejected_batches": len(info["rejected_batches"]),
                "profiles": info["profiles"],
                "quota_used_today": info["quota"]["used_today"],
            }
            for client, info in state["target"]["clients"].items()
        }
        return JSONResponse(
            {
                "service": "connector sandbox (Adobe Target bulk profile API + Copernica REST)",
                "now": state["now_iso"],
                "target": target,
                "copernica": state["copernica"]["databases"],
                "faults": state["faults"]["config"],
                "endpoints": ["/_sandbox/state", "/_sandbox/faults", "/_sandbox/clock"],
            }
        )

    async def state(request: Request) -> Response:
        return JSONResponse(sandbox.snapshot())

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
                if not isinstance(changes, dict):
                    raise TypeError("expected a JSON object")
                sandbox.set_faults(**changes)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": {"message": str(exc)}}, 400)
        return JSONResponse(sandbox.faults.as_dict())

    async def clock(request: Request) -> Response:
        try:
            data = json.loads(await request.body() or b"{}")
            now = sandbox.clock.advance(float(data.get("advance", 0)))
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse(
                {"error": {"message": f"expected {{'advance': seconds}}: {exc}"}}, 400
            )
        return JSONResponse({"now": now, "now_iso": iso(now)})

    async def wait(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(sandbox.wait_idle)
        return JSONResponse({"idle": True})

    async def copernica_schema(request: Request) -> Response:
        store = sandbox.copernica
        if request.method == "POST":
            try:
                store.declare(parse_schema(json.loads(await request.body() or b"{}")))
            except (ValueError, SchemaError) as exc:
                return JSONResponse({"error": {"message": str(exc)}}, 400)
        with store.lock:
            declared = {db.name: db.schema.as_declared() for db in store.databases.values()}
        return JSONResponse(declared)

    async def copernica_reset(request: Request) -> Response:
        sandbox.copernica.reset()
        return JSONResponse({"reset": True})

    return [
        Route("/", summary, methods=["GET"]),
        Route("/_sandbox/copernica/schema", copernica_schema, methods=["GET", "POST"]),
        Route("/_sandbox/copernica/reset", copernica_reset, methods=["POST"]),
        Route("/_sandbox/state", state, methods=["GET"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST"]),
        Route("/_sandbox/clock", clock, methods=["POST"]),
        Route("/_sandbox/wait", wait, methods=["POST"]),
    ]
