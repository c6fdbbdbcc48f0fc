"""The sandbox's ASGI application: the Target, Copernica and admin routes over one state."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from connector.sandbox import admin_api, copernica_api, mbox_api, target_api
from connector.sandbox.faults import FaultInjector
from connector.sandbox.state import Sandbox


def create_app(sandbox: Sandbox) -> Any:
    """The ASGI app: fault injection around the Target, Copernica and admin routes."""
    app = Starlette(
        routes=[
            *admin_api.routes(sandbox),
            *target_api.routes(sandbox),
            *mbox_api.routes(sandbox),
            *copernica_api.routes(sandbox),
        ]
    )
    app.state.sandbox = sandbox
    return FaultInjector(app, sandbox)
