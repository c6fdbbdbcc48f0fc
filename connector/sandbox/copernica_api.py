"""Copernica REST endpoints (prefixes /v1../v4 or none; database by id or name).

Status codes follow v3/v4: 204 on update, 201 with ``X-Created`` on create; errors are
400 ``{"error": {"message": ...}}``.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.sandbox.copernica_store import Condition, CopernicaError

if TYPE_CHECKING:
    from connector.sandbox.app import Sandbox

PREFIXES = ("", "/v1", "/v2", "/v3", "/v4")
MAX_LIMIT = 1000
_FIELDS_PARAM = re.compile(r"^fields(\[\d*\])?$")
_FORM_FIELD = re.compile(r"^fields\[(.+)\]$")


def error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status)


def _version(request: Request) -> str:
    first = request.url.path.split("/")[1]
    return first if first in ("v1", "v2", "v3", "v4") else ""


def _token_ok(sandbox: Sandbox, request: Request) -> bool:
    token = sandbox.options.token
    if token is None:
        return True
    if _version(request) == "v4":
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    else:
        given = request.query_params.get("access_token")
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _scalar(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | str):
        return str(value)
    raise CopernicaError(f"Invalid data provided: field {name!r} must be a scalar")


async def body_fields(request: Request) -> dict[str, str]:
    """Field values from a JSON body (``{"fields": {...}}`` or flat) or a form body."""
    raw = await request.body()
    ctype = request.headers.get("content-type", "").lower()
    if "json" in ctype or (not ctype and raw.lstrip().startswith(b"{")):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise CopernicaError("Invalid data provided: body is not valid JSON") from None
        if not isinstance(data, dict):
            raise CopernicaError("Invalid data provided: expected a JSON object")
        if isinstance(data.get("fields"), dict):
            data = data["fields"]
        return {str(k): _scalar(str(k), v) for k, v in data.items()}
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise CopernicaError("Invalid data provided: body is not UTF-8") from None
    values: dict[str, str] = {}
    for key, value in pairs:
        match = _FORM_FIELD.match(key)
        if match:
            values[match.group(1)] = value
        elif not key.startswith("interests") and key != "access_token":
            values[key] = value
    return values


def conditions(request: Request) -> list[Condition]:
    return [
        Condition.parse(value)
        for key, value in request.query_params.multi_items()
        if _FIELDS_PARAM.match(key)
    ]


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise CopernicaError(f"Invalid {name} parameter: {raw!r} is not a number") from None
    if value < 0:
        raise CopernicaError(f"Invalid {name} parameter: must be >= 0")
    return value


def routes(sandbox: Sandbox) -> list[Route]:
    store = sandbox.copernica

    def guarded(handler: Any, name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            store.count_call(f"{request.method} {name}")
            if not _token_ok(sandbox, request):
                return error("Invalid access token")
            try:
                return await handler(request)
            except CopernicaError as exc:
                return error(str(exc))

        return endpoint

    async def put_profiles(request: Request) -> Response:
        db = store.database(request.path_params["db"])
        conds = conditions(request)
        if not conds:
            raise CopernicaError("Missing fields parameter: it selects the profiles to modify")
        values = await body_fields(request)
        matches = store.select(db, conds)
        if matches:
            store.update(matches, db, values)
            return Response(status_code=204)
        if _flag(request, "create"):
            profile = store.create(db, values)
            return Response(status_code=201, headers={"X-Created": str(profile.id)})
        return Response(status_code=204)

    async def post_profiles(request: Request) -> Response:
        db = store.database(request.path_params["db"])
        profile = store.create(db, await body_fields(request))
        return Response(status_code=201, headers={"X-Created": str(profile.id)})

    async def get_profiles(request: Request) -> Response:
        db = store.database(request.path_params["db"])
        start = _int(request, "start", 0)
        limit = min(_int(request, "limit", 100), MAX_LIMIT)
        matches = store.select(db, conditions(request))
        page = matches[start : start + limit]
        data: dict[str, Any] = {"start": start, "limit": limit, "count": len(page)}
        if _flag(request, "total"):
            data["total"] = len(matches)
        data["data"] = [p.as_json() for p in page]
        return JSONResponse(data)

    def _profile(request: Request) -> Any:
        raw = request.path_params["id"]
        profile = store.profile(int(raw)) if raw.isdigit() else None
        if profile is None:
            raise CopernicaError("No profile with supplied ID")
        return profile

    async def put_profile_fields(request: Request) -> Response:
        profile = _profile(request)
        store.update([profile], store.databases[profile.database_id], await body_fields(request))
        return Response(status_code=204)

    async def get_profile(request: Request) -> Response:
        return JSONResponse(_profile(request).as_json())

    async def get_profile_fields(request: Request) -> Response:
        return JSONResponse(_profile(request).fields)

    table = [
        ("/database/{db}/profiles", put_profiles, "PUT", "database_profiles"),
        ("/database/{db}/profiles", post_profiles, "POST", "database_profiles"),
        ("/database/{db}/profiles", get_profiles, "GET", "database_profiles"),
        ("/profile/{id}/fields", put_profile_fields, "PUT", "profile_fields"),
        ("/profile/{id}/fields", get_profile_fields, "GET", "profile_fields"),
        ("/profile/{id}", get_profile, "GET", "profile"),
    ]
    return [
        Route(prefix + path, guarded(handler, name), methods=[method])
        for prefix in PREFIXES
        for path, handler, method, name in table
    ]
