"""Copernica REST client: one ``PUT database/{db}/profiles`` per profile, adaptive concurrency.

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

PUT is idempotent for one exact selector, so every transient failure is retried
(``copernica_puts``).

Errors: every refusal is HTTP 400 ``{"error": {"message": ...}}``. "No database with supplied
ID" and "Invalid method" (a base URL that is not the API) are configuration errors: the
account's settings are wrong and no row is to blame (``PutResult.config_error``,
``ConfigurationError``); "Invalid access token" refuses the credentials; any other message
("Invalid data provided") refuses that one profile.

Pace: ``put_many`` hands the PUTs to ``copernica_puts.PutSender``, which sends them under
asyncio through aiohttp with adaptive concurrency; this client says what each PUT is (selector,
URL, body) and what a refusal means. With ``max_requests_per_s`` set, the PUTs of every client
of the account in this process share that ceiling, held by the rule of ``call_slots`` over a
one-second period.

Fields: ``database_fields`` reads ``GET database/{db}/fields`` (the names as Copernica spells
them) for the destination's check of the params (``copernica_fields``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import httpx
from yarl import URL

from connector.destinations.call_slots import MemoryCallSlots, process_call_slots
from connector.destinations.copernica_puts import (
    PaceReport,
    ProfilePut,
    PutResult,
    PutSender,
)
from connector.destinations.http import (
    ConfigurationError,
    DeliveryError,
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
        call_slots: MemoryCallSlots | None = None,
    ) -> None:
        """``sleep`` and ``clock``: real time unless a test fakes it (a PUT's waits then call
        ``sleep`` and yield to the event loop). ``call_slots``: the ceiling on requests per
        second (default: the account's in this process, when ``max_requests_per_s`` is set)."""
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
            "Copernica", timeout_s=settings.timeout_s, verify_tls=settings.verify_tls
        )
        if call_slots is None and settings.max_requests_per_s is not None:
            call_slots = process_call_slots(self._account(), settings.max_requests_per_s, 1.0)
        self._call_slots = call_slots
        self._put_prefix: tuple[str, str] | None = None
        self._puts = PutSender(
            settings,
            prepare=self._put_request,
            refused=self._put_refused,
            headers=self._auth()[1],
            secrets=self._secrets,
            retry=self.retry,
            sleep=sleep,
            clock=clock,
            call_slots=call_slots,
        )

    def _account(self) -> str:
        """The account a per-second ceiling belongs to: the service and the credentials
        (hashed: the key never holds the token)."""
        token = hashlib.sha256((self._token or "").encode()).hexdigest()[:16]
        return f"copernica:{self.base_url}:{token}"

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
        return self.put_many([(identity, fields)])[0]

    def put_many(
        self,
        items: Iterable[tuple[str, Mapping[str, str]]],
        on_result: Callable[[PutResult], None] | None = None,
    ) -> list[PutResult]:
        """PUT every (identity, fields), paced (``copernica_puts``); the results in the order of
        ``items``, ``on_result`` called with each as it comes.

        Once a PUT found the service unreachable, the ones not started yet are not tried
        (``unreachable``): each would spend the whole retry budget on a service that is down.
        """
        return self._puts.put_many(items, on_result)

    @property
    def last_pace(self) -> PaceReport | None:
        """How the last ``put_many`` paced its PUTs (None before the first)."""
        return self._puts.last_pace

    def _put_request(self, identity: str, fields: Mapping[str, str]) -> ProfilePut:
        """The PUT of one profile; ``SelectorError`` when its identity may not select it alone."""
        selector = build_selector(self.match_field, self.match_field, identity)
        # create=1 builds the new profile from the body only, not from the selector: without
        # the match field in the body it would be created without its identity (and the next
        # PUT would create a duplicate)
        flat = {**dict(fields), self.match_field: identity}
        doc: dict[str, Any] = flat if self.api_version == "v1" else {"fields": flat}
        body = json.dumps(doc, ensure_ascii=False).encode()
        return ProfilePut(identity, self._put_url(selector), body)

    def _put_url(self, selector: str) -> URL:
        """``profiles?fields[]=<selector>&create=1`` (and the token up to v3), encoded as
        ``urlencode`` encodes it; the part after the selector is the same for every PUT."""
        if self._put_prefix is None:
            tail = urlencode([("create", "1"), *self._auth()[0]])
            self._put_prefix = (f"{self._url('profiles')}?fields%5B%5D=", f"&{tail}")
        head, tail = self._put_prefix
        return URL(f"{head}{quote_plus(selector)}{tail}", encoded=True)

    def _put_refused(self, identity: str, status: int, payload: bytes, attempts: int) -> PutResult:
        """A PUT's answer that is neither OK nor transient: whose fault it is (module docstring,
        Errors)."""
        message = self._error_message(payload)
        return PutResult(
            identity,
            ok=False,
            status_code=status,
            error=f"HTTP {status}: {message}",
            auth_refused=status in (401, 403) or "access token" in message.lower(),
            config_error=status == 400 and message in CONFIGURATION_MESSAGES,
            attempts=attempts,
        )

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
