"""Test doubles shared by the batch and pipeline tests: a mapping stand-in and a decoder.

The decoder follows shared/api/PROTOCOLS.md "Our model of how the service reads a batch",
written here independently of the connector's writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from connector.settings import Settings


@dataclass
class FakeIdentity:
    column: str = "customer_id"
    type: str = "thirdPartyId"


@dataclass
class FakeMapping:
    name: str = "crm"
    destination: str = "target"
    identity: FakeIdentity = field(default_factory=FakeIdentity)
    param_names: list[str] = field(default_factory=lambda: ["email", "tier", "city"])


class BatchRejected(ValueError):
    pass


def _hex(c: int) -> bool:
    return chr(c) in "0123456789abcdefABCDEF"


def decode_form_value(text: bytes) -> str:
    """``+`` is a space, ``%XX`` a byte, the bytes UTF-8; anything invalid rejects."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == ord("+"):
            out.append(0x20)
            i += 1
        elif c == ord("%"):
            if i + 2 >= len(text):
                raise BatchRejected("truncated escape")
            if not (_hex(text[i + 1]) and _hex(text[i + 2])):
                raise BatchRejected("invalid escape")
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchRejected("invalid UTF-8") from exc


def decode_batch(body: bytes) -> tuple[list[str], list[list[str]]]:
    """(header, rows) as the service reads the body."""
    body = body.split(b"&", 1)[0]
    if not body.startswith(b"batch="):
        raise BatchRejected("no batch= prefix")
    body = body[len(b"batch=") :]
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in body.split(b"\n")]
    decoded = [[decode_form_value(f.strip(b" \t")) for f in ln.split(b",")] for ln in lines]
    return decoded[0], decoded[1:]


def make_settings(tmp_path: Path, **target: object) -> Settings:
    return Settings(state_dir=tmp_path / "state", target={"client_code": "demo", **target})
