"""The mbox call, as far as v2's override rule needs one: it commits a profile's pending attributes.

``GET /m2/{client}/mbox/json?mbox=<name>&mbox3rdPartyId=<id>`` (``mboxPC=<pcId>`` for a pcId
profile; both may be given), in the shape of Target's delivery API. ``profile.<name>=<value>``
parameters are then written as committed attributes, as a real mbox call with profile
parameters would (empty ones are ignored). The answer is JSON::

    {"client": "demo", "mbox": "home", "content": "", "thirdPartyId": "X", "committed": 2,
     "profiles": [{"idType": "thirdPartyId", "id": "X", "found": true, "committed": 2,
                   "profileParams": 0, "message": "committed 2 pending attribute values"}]}

400 without ``mbox`` or without any id, or for a thirdPartyId the batch API would refuse; 403
without a valid token when one is required (as every /m2 endpoint). Not metered by the bulk
API's calls-per-minute limit, never faulted (faults.py), and handled after every batch
accepted before it (``Sandbox.run_in_order``), so "batch, mbox, batch" happens in that order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.sandbox.profiles import third_party_id_ok
from connector.sandbox.target_api import token_ok

if TYPE_CHECKING:
    from connector.sandbox.state import Sandbox

# query parameter -> the id column it names
ID_PARAMS = (("mbox3rdPartyId", "thirdPartyId"), ("mboxPC", "pcId"))
PROFILE_PREFIX = "profile."


def _error(status: int, message: str) -> Response:
    return JSONResponse({"status": status, "message": message}, status)


def _message(result: dict[str, Any]) -> str:
    if result["found"]:
        return f"committed {result['committed']} pending attribute values"
    if result["profileParams"]:
        return "no profile found: created with the profile.* parameters"
    return "no profile found: nothing to commit"


def routes(sandbox: Sandbox) -> list[Route]:
    target = sandbox.target

    async def mbox(request: Request) -> Response:
        client = request.path_params["client"]
        if not token_ok(sandbox, request):
            return _error(403, "Authentication failed")
        query = request.query_params
        name = query.get("mbox")
        if not name:
            return _error(400, "Missing mbox parameter")
        ids = [(column, query[param]) for param, column in ID_PARAMS if query.get(param)]
        if not ids:
            return _error(400, "Missing visitor id: give mbox3rdPartyId or mboxPC")
        max_id = sandbox.options.max_third_party_id_chars
        for column, pid in ids:
            if column == "thirdPartyId" and not third_party_id_ok(pid, max_id):
                return _error(
                    400, f"Invalid mbox3rdPartyId: no '+' or '/', at most {max_id} characters"
                )
        params = {
            key.removeprefix(PROFILE_PREFIX): value
            for key, value in query.multi_items()
            if key.startswith(PROFILE_PREFIX) and key != PROFILE_PREFIX and value
        }
        try:
            results = await run_in_threadpool(
                sandbox.run_in_order, target.mbox, client, ids, params
            )
        except ValueError as exc:
            return _error(400, str(exc))
        for result in results:
            result["message"] = _message(result)
        body: dict[str, Any] = {"client": client, "mbox": name, "content": ""}
        body.update((column, pid) for column, pid in ids)
        body["committed"] = sum(result["committed"] for result in results)
        body["profiles"] = results
        return JSONResponse(body)

    return [Route("/m2/{client}/mbox/json", mbox, methods=["GET"])]
