"""Source mappings: the model, loading the YAML files, the typing rules of param values."""

from connector.mapping.accounts import AccountFeed, account_conflicts
from connector.mapping.errors import MappingError, MappingsInvalid
from connector.mapping.file_days import DEFAULT_DATE_PATTERN, compile_date_pattern, day_from_name
from connector.mapping.loader import (
    MappingFile,
    MappingsCheck,
    check_file,
    check_mappings,
    check_text,
    find_mapping,
    load_mapping,
    load_mappings,
    parse_mapping,
)
from connector.mapping.model import (
    TARGET_ID_HEADERS,
    CsvSource,
    Identity,
    ParamSpec,
    Source,
    SourceMapping,
    SqlSource,
    Transform,
    expand_env,
)
from connector.mapping.schema import mapping_json_schema, mapping_json_schema_text
from connector.mapping.values import ParamType, check_decimal_text, type_value, value_typer

__all__ = [
    "DEFAULT_DATE_PATTERN",
    "TARGET_ID_HEADERS",
    "AccountFeed",
    "CsvSource",
    "Identity",
    "MappingError",
    "MappingFile",
    "MappingsCheck",
    "MappingsInvalid",
    "ParamSpec",
    "ParamType",
    "Source",
    "SourceMapping",
    "SqlSource",
    "Transform",
    "account_conflicts",
    "check_decimal_text",
    "check_file",
    "check_mappings",
    "check_text",
    "compile_date_pattern",
    "day_from_name",
    "expand_env",
    "find_mapping",
    "load_mapping",
    "load_mappings",
    "mapping_json_schema",
    "mapping_json_schema_text",
    "parse_mapping",
    "type_value",
    "value_typer",
]
