"""Sources: the rows of a mapping partition as raw chunks (CSV files, SQL tables or queries)."""

from connector.sources.chunks import RawChunk, SourceError, source_error_reject
from connector.sources.extract import iter_source_chunks
from connector.sources.probe import probe
from connector.sources.registry import FileRegistry
from connector.sources.sql import high_water_mark, record_cursor

__all__ = [
    "FileRegistry",
    "RawChunk",
    "SourceError",
    "high_water_mark",
    "iter_source_chunks",
    "probe",
    "record_cursor",
    "source_error_reject",
]
