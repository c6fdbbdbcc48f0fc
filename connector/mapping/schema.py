"""The JSON Schema of a mapping file, for editors (``# yaml-language-server: $schema=...``)."""

from __future__ import annotations

import json
from typing import Any

from connector.mapping.model import SourceMapping


def mapping_json_schema() -> dict[str, Any]:
    """JSON Schema of a mapping file (for editors: ``# yaml-language-server: $schema=...``)."""
    schema = SourceMapping.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Profile sync connector source mapping"
    return schema


def mapping_json_schema_text() -> str:
    """The schema as indented JSON text."""
    return json.dumps(mapping_json_schema(), indent=2, sort_keys=False)
