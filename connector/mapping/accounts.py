"""The rule that makes the mappings of one destination account describe one profile.

The mappings of one destination feed one account (its client code or database, from the
settings), whose profile is the union of their params: one param has one owner there, and
profiles are identified one way. ``connector mappings validate`` applies it to the files;
the outbox applies it to the stores the mappings already fed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from connector.mapping.errors import MappingError


class _IdentityFacts(Protocol):
    @property
    def type(self) -> str: ...


class AccountFeed(Protocol):
    """What the rule reads of a mapping (a SourceMapping, or a store a mapping fed)."""

    @property
    def name(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def identity(self) -> _IdentityFacts: ...
    @property
    def param_names(self) -> Sequence[str]: ...


def account_conflicts(mappings: Sequence[tuple[str, AccountFeed]]) -> list[MappingError]:
    """What stops ``(file, mapping)`` pairs from describing one profile per destination account."""
    errors: list[MappingError] = []
    owner: dict[tuple[str, str], tuple[str, str]] = {}
    id_type: dict[str, tuple[str, str, str]] = {}
    for source, mapping in mappings:
        destination = str(mapping.destination)
        kind = str(mapping.identity.type)
        first = id_type.setdefault(destination, (kind, source, mapping.name))
        if first[0] != kind:
            errors.append(
                MappingError(
                    source,
                    "identity.type",
                    f"{kind!r}, but {first[1]} ({first[2]}) feeds the same {destination} account "
                    f"with {first[0]!r}: the mappings of one account identify profiles one way",
                )
            )
        for name in mapping.param_names:
            seen = owner.setdefault((destination, name), (source, mapping.name))
            if seen[1] != mapping.name:
                errors.append(
                    MappingError(
                        source,
                        f"params.{name}",
                        f"also fed to the same {destination} account by {seen[0]} ({seen[1]}): "
                        "one param has one owner at an account (rename one of them)",
                    )
                )
    return errors
