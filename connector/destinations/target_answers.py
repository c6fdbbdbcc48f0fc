"""What Adobe Target answers, read: batch submit and status XML, and Profile Fetch JSON.

Pure parsing, no I/O. XML is parsed with ``defusedxml``; a bare ``&`` that the service leaves
unescaped in a message is escaped before parsing. Status and row words are normalised to the
constants below; anything else is a ``ProtocolError`` naming what was seen.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from connector.destinations.http import ProtocolError, RejectedError

STATUS_COMPLETE = "complete"
STATUS_INCOMPLETE = "incomplete"
STATUS_STUCK = "stuck"
_STATUS_WORDS = {
    "complete": STATUS_COMPLETE,
    "completed": STATUS_COMPLETE,
    "incomplete": STATUS_INCOMPLETE,
    "pending": STATUS_INCOMPLETE,
    "processing": STATUS_INCOMPLETE,
    "stuck": STATUS_STUCK,
}
ROW_SUCCESS = "success"
ROW_FAILED = "failed"
ROW_PENDING = "pending"
_ROW_WORDS = {
    "success": ROW_SUCCESS,
    "successful": ROW_SUCCESS,
    "error": ROW_FAILED,
    "failed": ROW_FAILED,
    "failure": ROW_FAILED,
    "pending": ROW_PENDING,
}


@dataclass(frozen=True)
class SubmitResult:
    """The service accepted a batch: its id and the URL to poll."""

    batch_id: str
    status_url: str
    message: str


@dataclass(frozen=True)
class BatchStatus:
    """One answer of ``batchStatus``: the batch state, v1 counts and/or v2 per-row statuses."""

    batch_id: str | None
    status: str  # complete | incomplete | stuck
    batch_size: int | None = None
    consumed: int | None = None
    successful: int | None = None
    not_found: int | None = None
    failed: int | None = None
    rows: dict[str, str] = field(default_factory=dict)  # id -> success | failed | pending

    @property
    def is_final(self) -> bool:
        return self.status in (STATUS_COMPLETE, STATUS_STUCK)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


# The docs print the status URL's "&m2Node=" raw inside the XML: escape a bare "&" first.
_BARE_AMP = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);)")


def _parse_xml(body: bytes) -> Element:
    text = body.strip()
    if not text.startswith(b"<"):
        raise ProtocolError(f"answer is not XML: {body[:120]!r}")
    text = _BARE_AMP.sub(b"&amp;", text)
    try:
        return fromstring(text)
    except DefusedXmlException as exc:
        raise ProtocolError(f"answer refused by the XML guard: {type(exc).__name__}") from None
    except ParseError as exc:
        raise ProtocolError(f"answer is not well-formed XML: {exc}") from None


def _child_text(root: Element, name: str) -> str | None:
    for child in root:
        if _local(child.tag) == name.lower():
            return (child.text or "").strip()
    return None


def _int_or_none(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ProtocolError(f"expected a number, got {value!r}") from None


def batch_id_from_url(url: str) -> str | None:
    """The ``batchId`` query parameter of a status URL."""
    values = parse_qs(urlsplit(url).query).get("batchId")
    return values[0] if values else None


def parse_submit_response(body: bytes) -> SubmitResult:
    """The ``batchUpdate`` answer; ``success=false`` -> ``RejectedError`` carrying the message."""
    root = _parse_xml(body)
    success = (_child_text(root, "success") or "").lower()
    message = _child_text(root, "message") or ""
    status_url = _child_text(root, "batchStatus") or ""
    if success not in ("true", "false"):
        raise ProtocolError(f"answer without a success flag: {body[:120]!r}")
    if success != "true":
        raise RejectedError(f"batch refused by the service: {message or 'no message'}")
    if not status_url:
        raise ProtocolError("success=true but no batchStatus URL in the answer")
    batch_id = batch_id_from_url(status_url) or _child_text(root, "batchId")
    if not batch_id:
        raise ProtocolError(f"no batchId in the status URL {status_url!r}")
    return SubmitResult(batch_id=batch_id, status_url=status_url, message=message)


def parse_status_response(body: bytes) -> BatchStatus:
    """The ``batchStatus`` answer, with or without details, v1 counts or v2 per-row form."""
    root = _parse_xml(body)
    raw_status = (_child_text(root, "status") or "").lower()
    if raw_status not in _STATUS_WORDS:
        raise ProtocolError(f"unknown batch status {raw_status!r}")
    rows: dict[str, str] = {}
    for child in root.iter():
        if _local(child.tag) != "profile":
            continue
        row_id = _child_text(child, "id")
        word = (_child_text(child, "status") or "").lower()
        if not row_id:
            continue
        if word not in _ROW_WORDS:
            raise ProtocolError(f"unknown row status {word!r} for {row_id!r}")
        rows[row_id] = _ROW_WORDS[word]
    return BatchStatus(
        batch_id=_child_text(root, "batchId"),
        status=_STATUS_WORDS[raw_status],
        batch_size=_int_or_none(_child_text(root, "batchSize")),
        consumed=_int_or_none(_child_text(root, "consumedCount")),
        successful=_int_or_none(_child_text(root, "successfulUpdates")),
        not_found=_int_or_none(_child_text(root, "profilesNotFound")),
        failed=_int_or_none(_child_text(root, "failedUpdates")),
        rows=rows,
    )


def with_show_details(url: str) -> str:
    """``url`` unchanged except ``showDetails=true`` appended when it carries no showDetails."""
    if "showdetails=" in urlsplit(url).query.lower():
        return url
    base, _, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    joined = f"{base}{sep}showDetails=true"
    return f"{joined}#{fragment}" if fragment else joined


def parse_profile(body: bytes) -> dict[str, str]:
    """Profile Fetch JSON -> {param: value}; ``profile.`` prefixes dropped."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise ProtocolError(f"profile answer is not JSON: {body[:120]!r}") from None
    attrs = doc.get("profileAttributes") if isinstance(doc, dict) else None
    if not isinstance(attrs, dict):
        return {}
    out: dict[str, str] = {}
    for name, item in attrs.items():
        value = item.get("value") if isinstance(item, dict) else item
        if value is None:
            continue
        out[name.removeprefix("profile.")] = str(value)
    return out
