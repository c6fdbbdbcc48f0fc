"""The ``fields[]`` selector of Copernica listings and bulk edits: ``<field><operator><value>``.

How live Copernica reads one condition (rmuit/copernica-api ``ApiBehaviorTest``):

* the condition is trimmed as a whole; the field name is everything before the operator and
  the value everything after it, spaces included (``"name ==x"`` names the field ``"name "``);
* field names match case-insensitively; a condition on a field the database does not have,
  or one without an operator, is ignored (it selects nothing away);
* text compares case-insensitively (``LASTNAME==mUIT`` finds ``Muit``), a leading space in
  the value counts; integer, float and date fields compare as their type, so surrounding
  spaces in the value do not matter there and ``Points==`` means ``Points==0``;
* ``=~`` / ``!~`` are SQL LIKE (``%``, ``_``), case-insensitive; ``<>`` is ``!=``;
* the special fields ``id``, ``code`` (the secret) and ``modified`` can be selected on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from connector.sandbox.copernica_schema import (
    DATE_TYPES,
    NUMBER_TYPES,
    FieldSpec,
    Schema,
)

OPERATORS = ("==", "!=", "<>", "<=", ">=", "=~", "!~", "<", ">")
SPECIAL_FIELDS = ("id", "code", "modified")
_CONDITION = re.compile(r"^([^=!<>~]+)(==|!=|<>|<=|>=|=~|!~|<|>)(.*)$", re.DOTALL)
_LEADING_NUMBER = re.compile(r"^\s*([+-]?(\d+(\.\d*)?|\.\d+))")


def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None


def _leading_number(text: str) -> Decimal:
    match = _LEADING_NUMBER.match(text)
    return Decimal(match.group(1)) if match else Decimal(0)


_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}


@dataclass(frozen=True)
class Condition:
    """One condition as written; ``bind`` ties it to a database's field, or drops it."""

    name: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Condition | None:
        """The condition in ``text``, or None when it has no operator (then it is ignored)."""
        match = _CONDITION.match(text.strip())
        if not match:
            return None
        name, op, value = match.groups()
        return cls(name, "!=" if op == "<>" else op, value)

    def bind(self, schema: Schema) -> BoundCondition | None:
        """This condition on ``schema``'s field, or None when the database has no such field."""
        special = self.name.lower()
        if special in SPECIAL_FIELDS:
            return BoundCondition(self, None, special)
        spec = schema.lookup(self.name)
        return None if spec is None else BoundCondition(self, spec, spec.name)


@dataclass(frozen=True)
class BoundCondition:
    """A condition on a known field (``spec``) or a special one (``spec`` None)."""

    condition: Condition
    spec: FieldSpec | None
    key: str  # the field's declared name, or "id" / "code" / "modified"

    @property
    def index_value(self) -> str | None:
        """For ``text==value``: the value as the profile index holds it (lower case)."""
        spec = self.spec
        if self.condition.op != "==" or spec is None:
            return None
        if spec.type in NUMBER_TYPES or spec.type in DATE_TYPES:
            return None
        return self.condition.value.lower()

    def matches(self, actual: str) -> bool:
        """Whether a profile whose value of this field is ``actual`` is selected."""
        op, value = self.condition.op, self.condition.value
        if op in ("=~", "!~"):
            hit = _like(value).fullmatch(actual) is not None
            return hit if op == "=~" else not hit
        kind = "special" if self.spec is None else self.spec.type
        left: object
        right: object
        if self.key == "id" or kind in NUMBER_TYPES:
            left, right = _leading_number(actual), _leading_number(value)
        elif self.key == "code":
            left, right = actual, value
        elif self.key == "modified" or kind in DATE_TYPES:
            left, right = actual, value.strip()
        else:
            lnum, rnum = _number(actual), _number(value)
            if op not in ("==", "!=") and lnum is not None and rnum is not None:
                left, right = lnum, rnum
            else:
                left, right = actual.lower(), value.lower()
        return _COMPARE[op](left, right)


def bind_all(texts: list[str], schema: Schema) -> list[BoundCondition]:
    """The conditions among ``texts`` that select anything (the others are ignored)."""
    bound = []
    for text in texts:
        condition = Condition.parse(text)
        found = None if condition is None else condition.bind(schema)
        if found is not None:
            bound.append(found)
    return bound
