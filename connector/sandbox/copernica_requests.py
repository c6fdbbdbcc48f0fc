"""Reading a Copernica request as the live API reads it: bodies, field values, listing params.

* A body is JSON or a form (``fields[name]=value``); invalid JSON, or JSON that is neither an
  object nor an array, is "Invalid data provided". An empty array or object is an empty body.
* Profile fields sit under ``fields`` (the key is case-sensitive: ``FIELDS`` is ignored, so is
  every other key). v1 (and the unversioned path of the v1 docs) also takes a flat body.
  For ``database/{id}/profiles`` a ``fields`` that is not an object or array is "Invalid data
  provided"; for ``profile/{id}`` it is ignored.
* Query parameter names are case-sensitive (``LIMIT`` is not ``limit``). ``start`` and
  ``limit`` are read like PHP's ``intval`` and echoed back, negative ones giving no data;
  ``limit`` is capped at 1000; ``total`` is on unless given a false value; conditions are
  ``fields[]`` (or ``fields[N]``) entries, a plain ``fields`` is ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request

from connector.sandbox.copernica_store import CopernicaError

MAX_LIMIT = 1000
INVALID_DATA = "Invalid data provided"
_CONDITION_KEY = re.compile(r"^fields\[\d*\]$")
_FORM_KEY = re.compile(r"^([^\[\]]+)\[([^\[\]]*)\]$")
_INTVAL = re.compile(r"^\s*([+-]?\d+)")

Body = dict[str, object]


def version(path: str) -> str:
    """``v1``..``v4``, or "" for the unversioned path."""
    first = path.split("/")[1] if path.count("/") else ""
    return first if first in ("v1", "v2", "v3", "v4") else ""


async def read_body(request: Request) -> Body:
    """The body as a PHP-like array: a JSON object or array (indices as keys), or a form."""
    raw = await request.body()
    ctype = request.headers.get("content-type", "").lower()
    stripped = raw.strip()
    if not stripped:
        return {}
    if "json" in ctype or (not ctype and stripped[:1] in (b"{", b"[")):
        try:
            data = json.loads(raw)
        except ValueError:
            raise CopernicaError(INVALID_DATA) from None
        if isinstance(data, list):
            return {str(i): v for i, v in enumerate(data)}
        if not isinstance(data, dict):
            raise CopernicaError(INVALID_DATA)
        return {str(k): v for k, v in data.items()}
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise CopernicaError(INVALID_DATA) from None
    body: Body = {}
    for key, value in pairs:
        match = _FORM_KEY.match(key)
        if match:
            outer = body.setdefault(match.group(1), {})
            if isinstance(outer, dict):
                outer[match.group(2)] = value
        else:
            body[key] = value
    return body


def _items(fields: object) -> list[tuple[str, object]]:
    if isinstance(fields, Mapping):
        return [(str(k), v) for k, v in fields.items()]
    return []  # an array's keys are indices: never field names


def profile_values(body: Body, api_version: str, *, strict: bool) -> list[tuple[str, object]]:
    """The (name, value) pairs a body writes into a profile, in order (later ones win).

    ``strict``: a ``fields`` that is not an object or array is "Invalid data provided"
    (``database/{id}/profiles``); otherwise it is ignored (``profile/{id}``)."""
    if "fields" in body:
        fields = body["fields"]
        if fields is None or isinstance(fields, list | Mapping):
            return _items(fields)
        if strict:
            raise CopernicaError(INVALID_DATA)
        return []
    if api_version in ("", "v1"):
        return [(k, v) for k, v in body.items() if k not in ("access_token", "interests")]
    return []


def flat_values(body: Body) -> list[tuple[str, object]]:
    """``profile/{id}/fields``: the whole body is fields."""
    return [(k, v) for k, v in body.items() if k != "access_token"]


def intval(raw: str) -> int:
    """PHP's ``intval`` of a query value: its leading integer, else 0."""
    match = _INTVAL.match(raw)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True)
class Paging:
    start: int
    limit: int
    total: bool
    descending: bool
    orderby: str

    @classmethod
    def of(cls, request: Request) -> Paging:
        q = request.query_params
        start = intval(q["start"]) if "start" in q else 0
        limit = min(intval(q["limit"]), MAX_LIMIT) if "limit" in q else 100
        total = q["total"].strip().lower() in ("true", "1", "yes", "on") if "total" in q else True
        descending = q.get("order", "").strip().lower() in ("desc", "descending")
        return cls(start, limit, total, descending, q.get("orderby", "id"))

    def page(self, items: list[object]) -> dict[str, object]:
        """The listing of ``items`` (already ordered) for this start and limit."""
        if self.start < 0 or self.limit < 0:
            data: list[object] = []
        else:
            data = items[self.start : self.start + self.limit]
        out: dict[str, object] = {
            "start": self.start,
            "limit": self.limit,
            "count": len(data),
            "data": data,
        }
        if self.total:
            out["total"] = len(items)
        return out


def condition_texts(request: Request) -> list[str]:
    """The ``fields[]`` conditions of the query, in order."""
    return [v for k, v in request.query_params.multi_items() if _CONDITION_KEY.match(k)]


def flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").strip().lower() in ("1", "true", "yes", "on")
