"""Column names shared by the stages (extract -> transform -> batches).

A raw chunk (``sources``) and a mapped chunk (``transform``) are ``pyarrow`` tables
whose columns are all strings except ``SEQ``; these names never collide with a
profile param (param names cannot start with ``_``).
"""

IDENTITY = "_identity"  # the profile's identity (pcId / thirdPartyId / Copernica match value)
SOURCE_REF = "_source_ref"  # "path/file.csv:LINE" or "table:<pk or cursor value>"
SEQ = "_seq"  # int64: order of appearance in the source for the partition; later wins
DIGEST = "_digest"  # md5 hex (digests.py) of the profile's mapped values (change detection)

# Rejects: one row per rejected source row or value
REJECT_COLUMNS = ("source_ref", "identity", "param", "reason", "raw")
# mapped rows: one "1"/"0" per param (non-empty or not), to report clears from narrow columns
FILLED = "_filled"
