"""The identity rules: what makes a value a usable profile identity at its destination.

Defined once here, for ``map_chunk`` (a row whose identity breaks a rule is rejected with
the first rule's reason) and for the asset check that re-reads delivered identities
(``invalid_identity_reasons``). Every identity must be non-empty and free of control
characters; then, at Target, a thirdPartyId holds no ``+`` or ``/`` and at most 256
characters, a pcId only letters, digits, ``.``, ``_`` and ``-`` and at most 128; at
Copernica, the match value holds at most 255 characters.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.buffers import one_array, value_offsets

MAX_THIRD_PARTY_ID = 256  # characters
MAX_PCID = 128
MAX_COPERNICA_IDENTITY = 255
PCID_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
CONTROL_RE = r"[\x00-\x1f\x7f]"

# identity bytes that break a rule: a control character (UTF-8 has bytes below 0x20 and
# 0x7f only as those characters), and for thirdPartyId "+" and "/"
_CONTROL, _PLUS, _SLASH = 1, 2, 3
_IDENTITY_BYTES = np.zeros(256, dtype=np.uint8)
_IDENTITY_BYTES[:32] = _CONTROL
_IDENTITY_BYTES[127] = _CONTROL
_IDENTITY_BYTES[ord("+")] = _PLUS
_IDENTITY_BYTES[ord("/")] = _SLASH


def _byte_rules(ident: pa.Array) -> dict[int, np.ndarray] | None:
    """Rows holding each kind of byte in ``_IDENTITY_BYTES``: one table lookup over the
    data buffer (the rows are found from the few hits). None for other than plain strings."""
    if not isinstance(ident, pa.Array) or ident.type != pa.string():
        return None
    n = len(ident)
    found = {kind: np.zeros(n, dtype=bool) for kind in (_CONTROL, _PLUS, _SLASH)}
    data = ident.buffers()[2]
    if data is None or not n:
        return found
    offsets = value_offsets(ident)
    kinds = _IDENTITY_BYTES[np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]]
    hits = np.flatnonzero(kinds)
    if len(hits):
        rows = np.searchsorted(offsets, hits + offsets[0], side="right") - 1
        for kind, mask in found.items():
            mask[rows[kinds[hits] == kind]] = True
    return found


def identity_problems(
    ident: pa.Array, destination: str, identity_type: str
) -> list[tuple[np.ndarray, str]]:
    """(mask, reason) for each identity rule, in the order they are reported: a row may
    break several, its first is its reason. ``ident``: the identities as delivered (after
    the mapping's identity transforms)."""
    missing = pc.fill_null(pc.equal(ident, ""), True)
    problems: list[tuple[pa.Array | np.ndarray, str]] = [(missing, "identity is empty")]
    filled = pc.fill_null(ident, "")
    by_byte = _byte_rules(ident)
    control = "identity contains a control character"
    if by_byte is None:
        problems.append((pc.match_substring_regex(filled, CONTROL_RE), control))
    else:
        problems.append((by_byte[_CONTROL], control))
    if destination == "target" and identity_type == "thirdPartyId":
        plus = "thirdPartyId contains '+' (not allowed)"
        slash = "thirdPartyId contains '/' (not allowed)"
        if by_byte is None:
            problems.append((pc.match_substring(filled, "+"), plus))
            problems.append((pc.match_substring(filled, "/"), slash))
        else:
            problems += [(by_byte[_PLUS], plus), (by_byte[_SLASH], slash)]
        problems.append(
            (
                _longer_than(filled, MAX_THIRD_PARTY_ID),
                f"thirdPartyId is longer than {MAX_THIRD_PARTY_ID} characters",
            )
        )
    elif destination == "target":
        bad_form = pc.and_(pc.invert(missing), pc.invert(pc.match_substring_regex(filled, PCID_RE)))
        problems.append((bad_form, "pcId may hold only letters, digits, '.', '_' and '-'"))
        problems.append(
            (_longer_than(filled, MAX_PCID), f"pcId is longer than {MAX_PCID} characters")
        )
    else:
        problems.append(
            (
                _longer_than(filled, MAX_COPERNICA_IDENTITY),
                f"identity is longer than {MAX_COPERNICA_IDENTITY} characters",
            )
        )
    return [
        (m if isinstance(m, np.ndarray) else m.to_numpy(zero_copy_only=False), reason)
        for m, reason in problems
    ]


def _longer_than(text: pa.Array, limit: int) -> np.ndarray:
    """Values of more than ``limit`` characters (counted only when some has more bytes)."""
    size = pc.binary_length(text)
    if not pc.any(pc.greater(size, limit)).as_py():
        return np.zeros(len(text), dtype=bool)
    return pc.greater(pc.utf8_length(text), limit).to_numpy(zero_copy_only=False)


def invalid_identity_reasons(
    values: pa.Array | pa.ChunkedArray, destination: str, identity_type: str
) -> list[str | None]:
    """Per value: the first identity rule it breaks, or None when it is a valid identity
    for ``destination`` with ``identity_type`` (e.g. ``"target"``, ``"thirdPartyId"``)."""
    ident = one_array(values)
    if ident.type != pa.string():
        ident = ident.cast(pa.string())
    reasons: list[str | None] = [None] * len(ident)
    for mask, reason in identity_problems(ident, destination, identity_type):
        for i in np.flatnonzero(mask):
            if reasons[i] is None:
                reasons[i] = reason
    return reasons
