"""Dagster code location: everything Dagster-specific lives in this package.

``build_definitions`` is imported when first asked for: `connector sync` imports the
Dagster-free modules of this package (``steps``, ``direct``, ``run_log``) without Dagster."""

from __future__ import annotations

from typing import Any

__all__ = ["build_definitions"]


def __getattr__(name: str) -> Any:
    if name == "build_definitions":
        from connector.defs.definitions import build_definitions

        return build_definitions
    raise AttributeError(name)
