"""Adobe Target endpoints: batchUpdate, batchStatus (v1 and v2) and the profile fetch API."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.sandbox.batchfile import BatchRejected, parse_batch
from connector.sandbox.target_store import Batch, iso

if TYPE_CHECKING:
    from connector.sandbox.state import Sandbox

log = logging.getLogger(__name__)

XML = "application/xml"


def _xml(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(f"<response>{body}</response>", status, headers=headers, media_type=XML)


def _failure(message: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _xml(
        f"<success>false</success><batchStatus></batchStatus><message>{escape(message)}</message>",
        status,
        headers,
    )


def token_ok(sandbox: Sandbox, request: Request) -> bool:
    token = sandbox.options.token
    if token is None:
        return True
    auth = request.headers.get("authorization", "")
    given = (
        auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("access_token")
    )
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _denied_xml() -> Response:
    return _failure(
        "Authentication failed: send a valid token as 'Authorization: Bearer <token>' "
        "(or the legacy 'access_token' header)",
        403,
    )


def _rate_limited(sandbox: Sandbox, client: str) -> Response:
    return _failure(
        f"Too many requests: client {client} is limited to "
        f"{sandbox.options.calls_per_minute} calls per minute",
        503,
        {"Retry-After": "60"},
    )


async def _read_body(request: Request, limit: int) -> tuple[bytes | None, int]:
    """The body, or None when it reaches ``limit`` bytes (the rest is drained, not kept)."""
    chunks: list[bytes] = []
    size = 0
    too_big = False
    async for chunk in request.stream():
        size += len(chunk)
        if too_big:
            continue
        chunks.append(chunk)
        if size >= limit:
            too_big = True
            chunks = []
    return (None if too_big else b"".join(chunks)), size


def routes(sandbox: Sandbox) -> list[Route]:
    target = sandbox.target
    options = sandbox.options

    async def batch_update(request: Request) -> Response:
        client = request.path_params["client"]
        version = "v2" if "/v2/" in request.url.path else "v1"
        if not token_ok(sandbox, request):
            return _denied_xml()
        if not target.allow_call(client, "batchUpdate"):
            return _rate_limited(sandbox, client)
        body, size = await _read_body(request, options.max_batch_bytes)
        if body is None:
            message = (
                f"Batch file too large: {size:,} bytes "
                f"(must be less than {options.max_batch_bytes:,} bytes)"
            )
            target.reject(client, version, message, b"")
            return _failure(message)
        try:
            parsed = await run_in_threadpool(parse_batch, body)
            base = (options.status_base_url or str(request.base_url)).rstrip("/")
            path = f"/m2/{client}/v2" if version == "v2" else f"/m2/{client}"

            def status_url(batch_id: str) -> str:
                return f"{base}{path}/profile/batchStatus?batchId={batch_id}&m2Node=00"

            batch = target.accept(client, version, body, parsed, status_url, sandbox.draw_stuck())
        except BatchRejected as exc:
            target.reject(client, version, str(exc), body)
            log.info("rejected batch for %s: %s", client, exc)
            return _failure(str(exc))
        sandbox.submit(target.apply, batch, parsed)
        url = batch.status_url if options.status_url_raw_ampersand else escape(batch.status_url)
        return _xml(
            f"<success>true</success><batchStatus>{url}</batchStatus>"
            "<message>Batch submitted for processing</message>"
        )

    async def batch_status(request: Request) -> Response:
        client = request.path_params["client"]
        if not token_ok(sandbox, request):
            return _denied_xml()
        if not target.allow_call(client, "batchStatus"):
            return _rate_limited(sandbox, client)
        batch_id = request.query_params.get("batchId")
        if not batch_id:
            return _xml("<success>false</success><message>Missing batchId parameter</message>", 400)
        batch = target.lookup(client, batch_id)
        if batch is None:
            return _xml(
                f"<success>false</success><batchId>{escape(batch_id)}</batchId>"
                f"<message>No status for batch {escape(batch_id)} of client {escape(client)}: "
                f"only the last {options.status_window} batches of the last "
                f"{options.status_ttl_s / 3600:g} hours are kept</message>",
                404,
            )
        details = request.query_params.get("showDetails", "").lower() == "true"
        return _xml(_status_body(batch, sandbox, details))

    def _status_body(batch: Batch, sandbox: Sandbox, details: bool) -> str:
        status = batch.status(sandbox.clock(), options.processing_delay_s)
        parts = [
            f"<batchId>{escape(batch.batch_id)}</batchId>",
            f"<status>{status}</status>",
            f"<batchSize>{batch.rows}</batchSize>",
        ]
        if details:
            done = status == "complete"
            parts += [
                f"<consumedCount>{batch.consumed if done else 0}</consumedCount>",
                f"<successfulUpdates>{batch.successful if done else 0}</successfulUpdates>",
                f"<profilesNotFound>{batch.not_found if done else 0}</profilesNotFound>",
                f"<failedUpdates>{batch.failed if done else 0}</failedUpdates>",
            ]
            if done and batch.version == "v2":
                parts += [
                    f"<profile><id>{escape(pid)}</id><status>failed</status></profile>"
                    for pid in batch.failed_ids
                ]
        return "".join(parts)

    def _profile_response(request: Request, id_column: str, pid: str) -> Response:
        if not token_ok(sandbox, request):
            return JSONResponse({"status": 403, "message": "Authentication failed"}, 403)
        client = request.query_params.get("client")
        if not client:
            return JSONResponse({"status": 400, "message": "Missing client parameter"}, 400)
        profile = target.profile(client, id_column, pid)
        attrs = {} if profile is None else profile.attributes()
        if profile is None or not attrs:
            what = "third party id" if id_column == "thirdPartyId" else "mboxPC"
            return JSONResponse(
                {
                    "status": 404,
                    "message": f"No profile found for client {client} with {what}={pid}",
                },
                404,
            )
        if id_column == "pcId":
            visitor = pid
        else:
            visitor = "tp-" + hashlib.sha1(f"{client}/{pid}".encode()).hexdigest()[:20]  # noqa: S324
        data = {
            "client": client,
            "visitorId": visitor,
            "modifiedAt": iso(profile.modified_at()),
            "profileAttributes": {
                name: {"value": value, "modifiedAt": iso(ts)} for name, (value, ts) in attrs.items()
            },
        }
        if id_column == "thirdPartyId":
            data["thirdPartyId"] = pid
        return JSONResponse(data)

    async def profile_by_pcid(request: Request) -> Response:
        return _profile_response(request, "pcId", request.path_params["pcid"])

    async def profile_by_third_party_id(request: Request) -> Response:
        return _profile_response(request, "thirdPartyId", request.path_params["tpid"])

    return [
        Route("/m2/{client}/profile/batchUpdate", batch_update, methods=["POST"]),
        Route("/m2/{client}/v2/profile/batchUpdate", batch_update, methods=["POST"]),
        Route("/m2/{client}/profile/batchStatus", batch_status, methods=["GET"]),
        Route("/m2/{client}/v2/profile/batchStatus", batch_status, methods=["GET"]),
        Route("/rest/v1/profiles/thirdPartyId/{tpid}", profile_by_third_party_id, methods=["GET"]),
        Route("/rest/v1/profiles/{pcid}", profile_by_pcid, methods=["GET"]),
    ]
