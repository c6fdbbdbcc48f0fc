"""The ``connector`` command line: ``main`` is the console script's entry point."""

from connector.cli.main import main

__all__ = ["main"]
