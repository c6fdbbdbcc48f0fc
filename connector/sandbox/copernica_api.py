"""Copernica REST endpoints, routed as live Copernica routes them (prefixes /v1../v4 or none).

Every error is HTTP 400 ``{"error": {"message": ...}}`` with the live API's exact message.
The access token is checked before anything else ("Invalid access token"). Then a path is
read part by part: too few parts is "Invalid request, element N is missing in 'directory'
path"; the entity id (second part) is checked next ("No database with supplied ID", "No
entity with supplied ID", "No collection with given ID", "No subprofile with supplied ID");
a known id followed by a part that names no endpoint is "Invalid method". Trailing and
double slashes are ignored, so are parts after ``database/{id}/profiles``,
``database/{id}/fields`` and ``profile/{id}/fields``. Paths are case-sensitive.

Served: ``databases``, ``database/{id}`` (GET), ``database/{id}/fields`` (GET, POST),
``database/{id}/collections`` (GET), ``database/{id}/profiles`` (GET, POST, PUT),
``profile/{id}`` (GET, PUT, POST, DELETE), ``profile/{id}/fields`` (GET, PUT, POST).
Subprofiles are not kept: their paths answer with the live errors. Success codes are the
v3/v4 ones: 201 + ``X-Created`` on create, 204 on an update or delete.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connector.sandbox.copernica_conditions import bind_all
from connector.sandbox.copernica_requests import (
    INVALID_DATA,
    Paging,
    condition_texts,
    flag,
    flat_values,
    profile_values,
    read_body,
    version,
)
from connector.sandbox.copernica_schema import FIELD_TYPES
from connector.sandbox.copernica_store import (
    CopernicaError,
    CopernicaProfile,
    CopernicaStore,
    Database,
)

if TYPE_CHECKING:
    from connector.sandbox.state import Sandbox

PREFIXES = ("", "/v1", "/v2", "/v3", "/v4")
# first path parts the unversioned prefix answers for (the rest of "/" is Target's)
ROOTS = ("database", "databases", "profile", "collection", "subprofile")
INVALID_METHOD = "Invalid method"
METHODS = ["GET", "POST", "PUT", "DELETE"]

Handler = Callable[[Request, list[str]], Awaitable[Response]]


def error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status)


def missing(element: int) -> CopernicaError:
    return CopernicaError(f"Invalid request, element {element} is missing in 'directory' path")


def _token_ok(sandbox: Sandbox, request: Request) -> bool:
    token = sandbox.options.token
    if token is None:
        return True
    if version(request.url.path) == "v4":
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    else:
        given = request.query_params.get("access_token")
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def path_parts(path: str) -> list[str]:
    """The parts after the version prefix, trailing empty ones dropped (inner ones kept)."""
    tail = path[len(version(path)) + 1 :] if version(path) else path
    parts = tail[1:].split("/")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


class CopernicaApi:
    """The request handlers over one ``CopernicaStore``."""

    def __init__(self, store: CopernicaStore) -> None:
        self.store = store

    async def dispatch(self, request: Request) -> Response:
        parts = path_parts(request.url.path)
        method = request.method
        root = parts[0] if parts else ""
        self.store.count_call(f"{method} {root or '/'}")
        if root == "databases":
            if method != "GET":
                raise CopernicaError(INVALID_METHOD)
            dbs = sorted(self.store.databases.values(), key=lambda db: db.id)
            return JSONResponse(Paging.of(request).page([db.as_json() for db in dbs]))
        if root not in ("database", "profile", "collection", "subprofile"):
            raise CopernicaError(INVALID_METHOD)
        if len(parts) < 2:
            raise missing(2)
        if root == "database":
            return await self._database(request, parts)
        if root == "profile":
            return await self._profile(request, parts)
        if root == "collection":
            raise CopernicaError("No collection with given ID")  # none are kept
        raise CopernicaError("No subprofile with supplied ID")

    # -- database/{id}/... -----------------------------------------------------------------

    async def _database(self, request: Request, parts: list[str]) -> Response:
        method, sub = request.method, parts[2] if len(parts) > 2 else None
        # a database is made on first use only where the connector writes to it
        db = self.store.database(parts[1], autocreate=sub in ("profiles", "fields"))
        if sub is None:
            if method == "GET":
                return JSONResponse(db.as_json())
            if method in ("POST", "PUT"):
                return Response(status_code=204)  # accepted, changes nothing here
        elif sub == "profiles":
            if method == "GET":
                return self._list_profiles(request, db)
            if method == "POST":
                return await self._create_profile(request, db)
            if method == "PUT":
                return await self._edit_profiles(request, db)
        elif sub == "fields":
            if method == "GET":
                return JSONResponse(
                    Paging.of(request).page([f.as_json() for f in db.schema.fields])
                )
            if method == "POST":
                return await self._add_field(request, db)
        elif sub == "collections" and method == "GET":
            listed = db.as_json()["collections"]["data"]
            return JSONResponse(Paging.of(request).page(listed))
        raise CopernicaError(INVALID_METHOD)

    def _list_profiles(self, request: Request, db: Database) -> Response:
        paging = Paging.of(request)
        found = self.store.select(db, bind_all(condition_texts(request), db.schema))
        spec = db.schema.lookup(paging.orderby)  # an unknown orderby leaves them by id
        if spec is not None:
            found.sort(key=lambda p: p.value(spec.name, db.schema))
        if paging.descending:
            found.reverse()
        return JSONResponse(paging.page([p.as_json(db.schema) for p in found]))

    async def _create_profile(self, request: Request, db: Database) -> Response:
        body = await read_body(request)
        values = profile_values(body, version(request.url.path), strict=True)
        profile = self.store.create(db, values)
        return Response(status_code=201, headers={"X-Created": str(profile.id)})

    async def _edit_profiles(self, request: Request, db: Database) -> Response:
        """Bulk edit: every profile the conditions select (all of them when none of the
        conditions names a field of the database); ``create`` makes one when none match."""
        body = await read_body(request)
        values = profile_values(body, version(request.url.path), strict=True)
        matches = self.store.select(db, bind_all(condition_texts(request), db.schema))
        if matches:
            self.store.update(matches, db, values)
            return Response(status_code=204)
        if flag(request, "create"):
            profile = self.store.create(db, values)
            return Response(status_code=201, headers={"X-Created": str(profile.id)})
        return Response(status_code=204)

    async def _add_field(self, request: Request, db: Database) -> Response:
        body = await read_body(request)
        name, type_ = body.get("name"), body.get("type", "text")
        value = body.get("value", "")
        if not isinstance(name, str) or not name or db.schema.lookup(name) is not None:
            raise CopernicaError(INVALID_DATA)
        if not isinstance(type_, str) or type_ not in FIELD_TYPES:
            raise CopernicaError(INVALID_DATA)
        self.store.add_field(db, name, type_, "" if value is None else str(value))
        spec = db.schema.lookup(name)
        created = "" if spec is None else str(spec.id)
        return Response(status_code=201, headers={"X-Created": created})

    # -- profile/{id}/... ------------------------------------------------------------------

    def _known_profile(self, raw: str) -> CopernicaProfile:
        profile = self.store.profile(int(raw)) if raw.isdigit() else None
        if profile is None:
            raise CopernicaError("No entity with supplied ID")
        return profile

    async def _profile(self, request: Request, parts: list[str]) -> Response:
        method, sub = request.method, parts[2] if len(parts) > 2 else None
        profile = self._known_profile(parts[1])
        db = self.store.databases[profile.database_id]
        if method == "DELETE" and (sub is None or profile.removed is not None):
            self.store.remove(profile)
            return Response(status_code=204)
        if sub is None:
            if method == "GET":
                return JSONResponse(profile.as_json(db.schema))
            if method in ("PUT", "POST"):
                body = await read_body(request)
                api_version = version(request.url.path)
                self.store.update([profile], db, profile_values(body, api_version, strict=False))
                secret = body.get("secret")
                if isinstance(secret, str | int | float) and not isinstance(secret, bool):
                    self.store.set_secret(profile, str(secret))
                return Response(status_code=204)
        elif sub == "fields":
            if method == "GET":
                return JSONResponse(profile.field_values(db.schema))
            if method in ("PUT", "POST"):
                self.store.update([profile], db, flat_values(await read_body(request)))
                return Response(status_code=204)
        elif sub == "subprofiles":
            if len(parts) < 4:
                raise missing(4)
            if method == "POST":
                raise CopernicaError("Subprofile could not be created")  # no collections kept
        raise CopernicaError(INVALID_METHOD)


def routes(sandbox: Sandbox) -> list[Route]:
    api = CopernicaApi(sandbox.copernica)

    async def endpoint(request: Request) -> Response:
        parts = path_parts(request.url.path)
        if not version(request.url.path) and (not parts or parts[0] not in ROOTS):
            return PlainTextResponse("Not Found", 404)
        if not _token_ok(sandbox, request):
            return error("Invalid access token")
        try:
            return await api.dispatch(request)
        except CopernicaError as exc:
            return error(str(exc))

    out = []
    for prefix in PREFIXES:
        roots = ROOTS if prefix == "" else ("{root}",)
        for root in roots:
            out.append(Route(f"{prefix}/{root}", endpoint, methods=METHODS))
            out.append(Route(f"{prefix}/{root}/{{rest:path}}", endpoint, methods=METHODS))
    return out
