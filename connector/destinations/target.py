"""Adobe Target Bulk Profile Update API client (v1 and v2), batch status and Profile Fetch.

One ``httpx.Client`` per destination, an explicit ``httpx.Timeout``, TLS verification on unless
``verify_tls`` is turned off (which logs a warning). Batch files are streamed from the outbox (a folder or an object store, ``connector.storage``),
never held whole in memory. Every
answer is read with a size bound and XML is parsed with ``defusedxml``.

Retry and duplicate policy for ``submit``
-----------------------------------------
A submit is retried (backoff with jitter, ``Retry-After`` honoured, bounded attempts and total
time, every attempt through the account's calls-per-minute limiter) only when the failure proves
the service did not process the request:

* connect errors, connect/pool timeouts (the request never left this machine);
* HTTP 429 and 503 (throttled: refused before processing);
* other 5xx except 504, when the body names no batch id.

Everything else that happens after the body may have reached the service — a read timeout, a
connection dropped or reset after sending, a write error mid-body, a 504 gateway timeout, a 5xx
that still carries a batch id — raises ``AmbiguousSubmitError`` and is NOT retried here. The
caller (``connector.delivery.drain``) marks the batch failed with the reason and re-queues its
rows as a new batch with ``attempt + 1``. If the first request did land, the rows are updated
twice with the same values: the duplicate is bounded to that one batch and attempt, costs quota
once more, and is harmless because a bulk profile update is idempotent (same values, no
counters). A ``RetriesExhausted`` from submit always means "provably not processed": the batch
goes back to the queue with the same attempt number.

``batch_status`` and ``fetch_profile`` are reads: every transient failure is retried.

The status URL is followed exactly as the service returned it (another edge host, ``m2Node``,
``mboxPC`` or other parameters kept); ``showDetails=true`` is added when absent. The bearer token
is only sent to the configured host or a sibling edge host under the same parent zone (Adobe's
edges share ``tt.omtrdc.net``), never to another IP address nor over http when the base is https,
so a forged status URL cannot collect it. Every body read is bounded in bytes and in total time.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from connector import storage
from connector.destinations.base import CallLimiter
from connector.destinations.http import (
    AmbiguousSubmitError,
    AuthError,
    NotFoundError,
    ProtocolError,
    RejectedError,
    RetryPolicy,
    TransientError,
    classify_transport_error,
    open_client,
    parse_retry_after,
    read_bounded,
    run_with_retries,
    scrub,
)
from connector.destinations.target_answers import (
    BatchStatus,
    SubmitResult,
    parse_profile,
    parse_status_response,
    parse_submit_response,
    with_show_details,
)
from connector.settings import TargetSettings

log = logging.getLogger(__name__)

SUBMIT_CHUNK = 1 << 20  # bytes of a batch file read at a time while its POST body is sent


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def token_may_go_to(url: str, base_url: str) -> bool:
    """Whether the bearer token may be sent to ``url`` given the configured ``base_url``.

    The configured host itself, or a sibling edge host under the same parent zone (Adobe's
    ``<client>.tt.omtrdc.net`` and ``mboxedgeNN.tt.omtrdc.net``: the base host minus its first
    label, when that leaves at least two labels). Never another IP address (``10.0.0.1`` is no
    sibling of ``127.0.0.1``), never a public suffix, never plain http when the base is https.
    """
    target, base = urlsplit(url), urlsplit(base_url)
    host = (target.hostname or "").lower()
    base_host = (base.hostname or "").lower()
    if not host or not base_host:
        return False
    if base.scheme.lower() == "https" and target.scheme.lower() != "https":
        return False
    if host == base_host:
        return True
    if _is_ip(host) or _is_ip(base_host):
        return False
    labels = base_host.split(".")
    parent = ".".join(labels[1:])
    return len(labels) >= 4 and host.endswith("." + parent)


class TargetClient:
    """Bulk Profile Update (v1/v2), batchStatus and Profile Fetch for one Target client code.

    ``limiter``: the account's calls-per-minute limit, which every batchUpdate and batchStatus
    request (each retry too) goes through; delivery hands in the one kept in the ledger
    (``delivery.call_limit``). None: the calls are not spaced (a client used outside delivery).
    """

    def __init__(
        self,
        settings: TargetSettings,
        *,
        limiter: CallLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.client_code = settings.client_code
        self.api_version = settings.api_version
        self._token = settings.token.get_secret_value() if settings.token else None
        self._secrets = (self._token,) if self._token else ()
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._http = open_client(
            "Adobe Target", timeout_s=settings.timeout_s, verify_tls=settings.verify_tls
        )
        self._base_host = (urlsplit(self.base_url).hostname or "").lower()

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TargetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _auth_headers(self, url: str) -> dict[str, str]:
        if not self._token:
            return {}
        if token_may_go_to(url, self.base_url):
            return {"Authorization": f"Bearer {self._token}"}
        parts = urlsplit(url)
        log.warning(
            "not sending the Target token to %s://%s (configured: %s)",
            parts.scheme,
            parts.hostname,
            self._base_host,
        )
        return {}

    def _metered(self) -> AbstractContextManager[float]:
        """The place of one batchUpdate or batchStatus request in the account's call limit."""
        return self.limiter.call() if self.limiter is not None else nullcontext(0.0)

    def _retrying(self, call: Callable[[], Any], what: str, **kw: Any) -> Any:
        return run_with_retries(
            call, self.retry, what=what, sleep=self._sleep, clock=self._clock, **kw
        )

    @property
    def update_url(self) -> str:
        client = quote(self.client_code, safe="")
        if self.api_version == "v1":
            return f"{self.base_url}/m2/{client}/profile/batchUpdate"
        return f"{self.base_url}/m2/{client}/v2/profile/batchUpdate"

    # -- batchUpdate ----------------------------------------------------------------------

    def submit(self, file: str | os.PathLike[str]) -> SubmitResult:
        """POST one batch file, streamed from its URL or path (``connector.storage``); see the
        module docstring for what is retried. ``storage.ObjectMissing`` when the file is not
        there (before anything is sent)."""
        url = os.fspath(file)
        name = url.rstrip("/").rsplit("/", 1)[-1]
        return self._retrying(
            lambda: self._submit_once(url, name),
            f"submit {name}",
            retry_if=lambda e: not e.processed_possible,
        )

    def _submit_once(self, file: str, name: str) -> SubmitResult:
        size = storage.head(file).size  # before a call is spent: a missing file sends nothing
        url = self.update_url
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(size),
            **self._auth_headers(url),
        }
        with self._metered():  # the stream opens once the call may go, not while it waits
            body = storage.open_stream(file, SUBMIT_CHUNK)
            try:
                with self._http.stream("POST", url, content=body, headers=headers) as resp:
                    payload = read_bounded(resp, max_seconds=self.settings.timeout_s)
                    status = resp.status_code
                    retry_after = resp.headers.get("retry-after")
            except httpx.TransportError as exc:
                err = classify_transport_error(exc, self._secrets)
                if err.processed_possible:
                    raise AmbiguousSubmitError(
                        f"submit {name}: outcome unknown after {err}"
                    ) from None
                raise err from None
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        return self._submit_answer(name, status, payload, retry_after)

    def _submit_answer(
        self, name: str, status: int, payload: bytes, retry_after: str | None
    ) -> SubmitResult:
        if status in (429, 503):
            raise TransientError(
                f"submit {name}: throttled (HTTP {status})",
                status_code=status,
                retry_after=parse_retry_after(retry_after),
            )
        if status >= 500:
            carries_id = b"batchId=" in payload or b"<batchId" in payload
            if status == 504 or carries_id:
                raise AmbiguousSubmitError(
                    f"submit {name}: HTTP {status}, the batch may have been accepted",
                    status_code=status,
                )
            raise TransientError(
                f"submit {name}: HTTP {status}",
                status_code=status,
                retry_after=parse_retry_after(retry_after),
            )
        if status in (401, 403):
            raise AuthError(
                f"submit {name}: HTTP {status}: credentials refused", status_code=status
            )
        if status != 200:
            raise RejectedError(
                f"submit {name}: HTTP {status}: {scrub(payload[:200], self._secrets)}",
                status_code=status,
            )
        return parse_submit_response(payload)

    # -- batchStatus ----------------------------------------------------------------------

    def batch_status(self, status_url: str) -> BatchStatus:
        """GET the status URL as given (+ showDetails=true). 404 -> ``NotFoundError``."""
        scheme = urlsplit(status_url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ProtocolError(f"status URL with scheme {scheme!r} refused")
        url = with_show_details(status_url)
        return self._retrying(lambda: self._get_status_once(url), "batchStatus")

    def _get_status_once(self, url: str) -> BatchStatus:
        payload, status, _ = self._get(url, limited=True)
        if status == 404:
            raise NotFoundError("batch status not found (expired or unknown)", status_code=404)
        if status in (401, 403):
            raise AuthError(f"batchStatus: HTTP {status}: credentials refused", status_code=status)
        if status != 200:
            raise RejectedError(
                f"batchStatus: HTTP {status}: {scrub(payload[:200], self._secrets)}",
                status_code=status,
            )
        return parse_status_response(payload)

    def _get(self, url: str, *, limited: bool) -> tuple[bytes, int, str | None]:
        try:
            with (
                self._metered() if limited else nullcontext(0.0),
                self._http.stream("GET", url, headers=self._auth_headers(url)) as resp,
            ):
                payload = read_bounded(resp, max_seconds=self.settings.timeout_s)
                status = resp.status_code
                retry_after = resp.headers.get("retry-after")
        except httpx.TransportError as exc:
            raise classify_transport_error(exc, self._secrets) from None
        if status == 429 or status >= 500:
            wait = parse_retry_after(retry_after)
            raise TransientError(f"GET: HTTP {status}", status_code=status, retry_after=wait)
        return payload, status, retry_after

    # -- Profile Fetch --------------------------------------------------------------------

    def profile_url(self, identity: str, id_type: str) -> str:
        ident = quote(identity, safe="")
        if id_type == "thirdPartyId":
            return f"{self.base_url}/rest/v1/profiles/thirdPartyId/{ident}"
        return f"{self.base_url}/rest/v1/profiles/{ident}"

    def fetch_profile(self, identity: str, id_type: str) -> dict[str, str] | None:
        """The stored params of one profile, or None when the service has no such profile."""
        url = self.profile_url(identity, id_type)
        full = f"{url}?client={quote(self.client_code, safe='')}"

        def once() -> dict[str, str] | None:
            payload, status, _ = self._get(full, limited=False)
            if status == 404:
                return None
            if status != 200:
                raise RejectedError(f"profile fetch: HTTP {status}", status_code=status)
            return parse_profile(payload)

        return self._retrying(once, "profile fetch")
