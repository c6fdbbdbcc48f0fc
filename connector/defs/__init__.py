"""Dagster code location: everything Dagster-specific lives in this package."""

from connector.defs.definitions import build_definitions

__all__ = ["build_definitions"]
