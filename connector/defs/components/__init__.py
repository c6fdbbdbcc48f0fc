"""Dagster Components for projects managed with `dg`: one per source mapping, one for delivery.

This package is the `dagster_dg_cli.registry_modules` entry point of the distribution, so
`dg list components` shows these types and `dg scaffold defs` can create them.
"""

from connector.defs.components.delivery import DeliveryComponent
from connector.defs.components.mapping import SourceMappingComponent

__all__ = ["DeliveryComponent", "SourceMappingComponent"]
