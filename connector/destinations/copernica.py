"""Copernica REST client: one ``PUT database/{db}/profiles`` per profile, bounded concurrency.

The selector is always ``fields[]=<match field>==<value>`` with ``create=1``. ``==`` compares whole
values: ``%`` and ``_`` are wildcards only for ``=~``/``!~``, so they are safe in a value, and
the connector never uses a pattern operator. The match field must be the mapping's identity field
(each identity is unique in a batch after dedupe). Values that a selector parser could read as
part of the operator (leading ``=``, ``~``, ``!``, ``<``, ``>``), empty values and values with
surrounding whitespace are refused: a PUT updates *every* profile that matches.
Copernica compares text case-insensitively, so identities that differ only in case select the
same profile there; a selector on a field the database lacks is ignored and would select every
profile, which the destination refuses before sending (``copernica_fields``).

Auth: v1-v3 ``access_token`` query parameter, v4 ``Authorization: Bearer``. The token never
reaches a log line or an exception message: everything is passed through ``scrub``.

The match field is also sent in the body: ``create=1`` builds a new profile from the body alone.

PUT is idempotent for one exact selector, so every transient failure (including ambiguous ones:
a timeout after sending) is retried with the shared ``RetryPolicy``; a retried create finds the
profile the first attempt made and updates it.

Errors: every refusal is HTTP 400 ``{"error": {"message": ...}}``. "No database with supplied
ID" and "Invalid method" (a base URL that is not the API) are configuration errors: the
account's settings are wrong and no row is to blame (``PutResult.config_error``,
``ConfigurationError``); "Invalid access token" refuses the credentials; any other message
("Invalid data provided") refuses that one profile.

Fields: ``database_fields`` reads ``GET database/{db}/fields`` (the names as Copernica spells
them) for the destination's check of the params (``copernica_fields``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from connector.destinations.http import (
    ConfigurationError,
    DeliveryError,
    ProtocolError,
    RejectedError,
    RetriesExhausted,
    RetryPolicy,
    TransientError,
    classify_transport_error,
    open_client,
    parse_retry_after,
    read_bounded,
    run_with_retries,
    scrub,
)
from connector.settings import CopernicaSettings

log = logging.getLogger(__name__)

_OPERATOR_START = ("=", "~", "!", "<", ">")
# 400 messages that mean the settings are wrong, whatever was sent
CONFIGURATION_MESSAGES = ("No database with supplied ID", "Invalid method")


class SelectorError(DeliveryError):
    """A selector that could match more than the one intended profile."""


def build_selector(match_field: str, identity_field: str, value: str) -> str:
    """``<field>==<value>`` for one profile, or ``SelectorError`` when it may not be unique."""
    if match_field != identity_field:
        raise SelectorError(
            f"match field {match_field!r} is not the mapping's identity field {identity_field!r}"
        )
    if not value:
        raise SelectorError("empty match value would match every profile without that field")
    if value != value.strip():
        raise SelectorError(f"match value {value!r} has surrounding whitespace")
    if value.startswith(_OPERATOR_START):
        raise SelectorError(f"match value {value!r} starts with an operator character")
    if any(ch in value for ch in "\r\n\x00"):
        raise SelectorError("match value contains a control character")
    return f"{match_field}=={value}"


@dataclass(frozen=True)
class PutResult:
    """The outcome of one profile PUT: ``ok`` confirmed, otherwise ``error`` says why."""

    identity: str
    ok: bool
    status_code: int | None = None
    created: bool = False
    error: str | None = None
    auth_refused: bool = False
    config_error: bool = False  # the database or the path does not exist: no row is to blame
    # the PUT never reached the service (no connection after every retry, or not tried once
    # another PUT of the batch found it so): the service is down, no row is to blame
    unreachable: bool = False


class CopernicaClient:
    """PUT profiles into one Copernica database."""

    def __init__(
        self,
        settings: CopernicaSettings,
        *,
        match_field: str,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.match_field = match_field
        self.base_url = settings.base_url.rstrip("/")
        self.database = settings.database
        self.api_version = settings.api_version
        self._token = settings.access_token.get_secret_value() if settings.access_token else None
        self._secrets = (self._token,) if self._token else ()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._http = open_client(
            "Copernica",
            timeout_s=settings.timeout_s,
            verify_tls=settings.verify_tls,
            max_connections=settings.concurrency,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CopernicaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- request plumbing -----------------------------------------------------------------

    def _url(self, tail: str) -> str:
        return f"{self.base_url}/database/{quote(self.database, safe='')}/{tail}"

    def _auth(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        if not self._token:
            return [], {}
        if self.api_version == "v4":
            return [], {"Authorization": f"Bearer {self._token}"}
        return [("access_token", self._token)], {}

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: list[tuple[str, str]],
        json_body: Any = None,
    ) -> tuple[int, bytes, httpx.Headers]:
        auth_params, headers = self._auth()
        kwargs: dict[str, Any] = {"params": params + auth_params, "headers": headers}
        if json_body is not None:
            kwargs["content"] = json.dumps(json_body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        try:
            with self._http.stream(method, url, **kwargs) as resp:
                body = read_bounded(resp, max_seconds=self.settings.timeout_s)
                status, resp_headers = resp.status_code, resp.headers
        except httpx.TransportError as exc:
            raise classify_transport_error(exc, self._secrets) from None
        if status == 429 or status >= 500:
            raise TransientError(
                f"{method} {scrub(url, self._secrets)}: HTTP {status}",
                status_code=status,
                retry_after=parse_retry_after(resp_headers.get("retry-after")),
            )
        return status, body, resp_headers

    def _error_message(self, body: bytes) -> str:
        try:
            doc = json.loads(body)
            msg = doc.get("error", {}).get("message") if isinstance(doc, dict) else None
        except (ValueError, AttributeError):
            msg = None
        return scrub(msg or body[:200].decode("utf-8", "replace"), self._secrets)

    # -- profiles -------------------------------------------------------------------------

    def put_profile(self, identity: str, fields: Mapping[str, str]) -> PutResult:
        """PUT one profile (create when missing); a refusal comes back as ``ok=False``."""
        try:
            selector = build_selector(self.match_field, self.match_field, identity)
        except SelectorError as exc:
            return PutResult(identity, ok=False, error=str(exc))
        params = [("fields[]", selector), ("create", "1")]
        # create=1 builds the new profile from the body only, not from the selector: without
        # the match field in the body it would be created without its identity (and the next
        # PUT would create a duplicate)
        flat = {**dict(fields), self.match_field: identity}
        body: dict[str, Any] = flat if self.api_version == "v1" else {"fields": flat}

        def once() -> PutResult:
            status, payload, headers = self._request(
                "PUT", self._url("profiles"), params=params, json_body=body
            )
            if 200 <= status < 300 or status == 303:
                created = status in (201, 303) or bool(headers.get("x-created"))
                return PutResult(identity, ok=True, status_code=status, created=created)
            message = self._error_message(payload)
            return PutResult(
                identity,
                ok=False,
                status_code=status,
                error=f"HTTP {status}: {message}",
                auth_refused=status in (401, 403) or "access token" in message.lower(),
                config_error=status == 400 and message in CONFIGURATION_MESSAGES,
            )

        try:
            return run_with_retries(
                once, self.retry, what="copernica PUT", sleep=self._sleep, clock=self._clock
            )
        except RetriesExhausted as exc:
            return PutResult(
                identity,
                ok=False,
                status_code=exc.status_code,
                error=str(exc),
                unreachable=exc.status_code is None and not exc.processed_possible,
            )
        except DeliveryError as exc:
            return PutResult(identity, ok=False, status_code=exc.status_code, error=str(exc))

    def put_many(
        self,
        items: Iterable[tuple[str, Mapping[str, str]]],
        on_result: Callable[[PutResult], None] | None = None,
    ) -> list[PutResult]:
        """PUT every (identity, fields) with at most ``settings.concurrency`` requests at once.

        Once a PUT found the service unreachable, the ones not started yet are not tried
        (``unreachable``): each would spend the whole retry budget on a service that is down.
        """
        results: list[PutResult] = []
        down = threading.Event()

        def put(item: tuple[str, Mapping[str, str]]) -> PutResult:
            if down.is_set():
                return PutResult(
                    item[0],
                    ok=False,
                    error="not sent: the service was unreachable",
                    unreachable=True,
                )
            result = self.put_profile(*item)
            if result.unreachable:
                down.set()
            return result

        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            for result in pool.map(put, items):
                results.append(result)
                if on_result:
                    on_result(result)
        return results

    def find_profiles(self, identity: str) -> list[dict[str, str]]:
        """The fields of every profile matching ``<match field>==identity`` (read-back)."""
        selector = build_selector(self.match_field, self.match_field, identity)
        params = [("fields[]", selector), ("limit", "10")]

        def once() -> list[dict[str, str]]:
            status, payload, _ = self._request("GET", self._url("profiles"), params=params)
            if status != 200:
                raise RejectedError(
                    f"profile read: HTTP {status}: {self._error_message(payload)}",
                    status_code=status,
                )
            try:
                doc = json.loads(payload)
            except ValueError:
                raise ProtocolError("profile read: answer is not JSON") from None
            data = doc.get("data", []) if isinstance(doc, dict) else []
            return [
                {k: "" if v is None else str(v) for k, v in (item.get("fields") or {}).items()}
                for item in data
                if isinstance(item, dict)
            ]

        return run_with_retries(
            once, self.retry, what="copernica GET", sleep=self._sleep, clock=self._clock
        )

    def database_fields(self) -> list[str] | None:
        """The database's field names as Copernica spells them; None when they cannot be read
        (another refusal, or the service unavailable): the caller then skips its checks.

        ``ConfigurationError`` when the service says the database does not exist."""

        def once() -> list[str] | None:
            status, payload, _ = self._request(
                "GET", self._url("fields"), params=[("limit", "1000")]
            )
            if status != 200:
                message = self._error_message(payload)
                if status == 400 and message in CONFIGURATION_MESSAGES:
                    raise ConfigurationError(
                        f"copernica database {self.database!r} at {self.base_url}: {message} "
                        "(check CONNECTOR_COPERNICA__DATABASE and CONNECTOR_COPERNICA__BASE_URL)",
                        status_code=status,
                    )
                return None
            try:
                doc = json.loads(payload)
            except ValueError:
                return None
            data = doc.get("data") if isinstance(doc, dict) else doc
            if not isinstance(data, list):
                return None
            return [str(item["name"]) for item in data if isinstance(item, dict) and "name" in item]

        try:
            return run_with_retries(
                once, self.retry, what="copernica fields", sleep=self._sleep, clock=self._clock
            )
        except ConfigurationError:
            raise
        except DeliveryError:
            return None
