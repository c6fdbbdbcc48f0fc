"""Hints for a mapping's mistakes: where an unknown key belongs, the value closest to a bad one.

The keys allowed at each place of a mapping file are read from the models
(``connector.mapping.model``), so a hint never names a key the format does not have:

- a key that is valid one level down or up: "did you mean to indent it under source?"
  (``date_from`` written at the top level), "did you mean to put it one level up, at
  the top level?" (``destination`` written under ``source:``);
- a key of the other kind of source: "date_from is a key of csv sources, not sql";
- else the closest known key here ("did you mean `column`?"), or one level down or up;
- else the place where the key is valid ("`date_from` is a key under source: ...").
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from connector.mapping.model import SourceMapping

# difflib ratios above which a word is taken for a typo of another: of a key at the same
# level, and of one a level down or up (a weaker guess: `colour` is not `column`)
_CLOSE = 0.6
_CLOSE_ELSEWHERE = 0.75


@dataclass(frozen=True)
class _Level:
    """The models whose keys are allowed at one place of the file (several for a union:
    the kinds of source); empty where keys are free (the param names under ``params``)."""

    path: tuple[Hashable, ...]
    models: tuple[type[BaseModel], ...]

    def known_keys(self) -> list[str]:
        return list(dict.fromkeys(k for m in self.models for k in _keys(m)))

    @property
    def where(self) -> str:
        return "at the top level" if not self.path else f"under {_dotted(self.path)}"


def unknown_key_hint(data: Any, path: Sequence[Hashable]) -> str | None:
    """A hint for the unknown key at ``path`` (its parents' keys, then the key) in ``data``."""
    *parent_path, key = path
    if not isinstance(key, str):
        return None
    here = _level(data, tuple(parent_path))
    if here is None:
        return None
    above = _level_above(data, here)
    other_kinds = _other_kinds(above, here, key)
    if other_kinds:
        return other_kinds
    below = _levels_below(data, here)
    for level in below:
        if key in level.known_keys():
            return f"did you mean to indent it under {_dotted(level.path)}?"
    if above is not None and key in above.known_keys():
        return f"did you mean to put it one level up, {above.where}?"
    close = _closest(key, here.known_keys())
    if close:
        return f"did you mean `{close}`?"
    for level in [*below, *([above] if above else [])]:
        close = _closest(key, level.known_keys(), _CLOSE_ELSEWHERE)
        if close:
            return f"did you mean `{close}` {level.where}?"
    for level in _all_levels(data):
        if key in level.known_keys():
            return f"`{key}` is a key {level.where}: did you mean to put it there?"
    return None


def closest_value_hint(value: Any, allowed: Sequence[str]) -> str | None:
    """``did you mean 'x'?`` for a value close to one of ``allowed``, else None."""
    if not isinstance(value, str):
        return None
    close = _closest(value, allowed) or _closest(value.lower(), allowed)
    return f"did you mean {close!r}?" if close and close != value else None


def quoted_values(expected: str) -> list[str]:
    """The values of pydantic's ``'a', 'b' or 'c'`` (a literal error's ``expected``)."""
    return re.findall(r"'([^']*)'", expected)


def _closest(word: str, candidates: Sequence[str], cutoff: float = _CLOSE) -> str | None:
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
    return found[0] if found else None


def _dotted(path: Sequence[Hashable]) -> str:
    return ".".join(str(part) for part in path)


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _field_annotation(models: Sequence[type[BaseModel]], key: Hashable) -> list[Any]:
    return [
        info.annotation
        for model in models
        for name, info in model.model_fields.items()
        if (info.alias or name) == key
    ]


def _models_in(annotation: Any) -> tuple[list[type[BaseModel]], bool]:
    """The models an annotation holds, and whether they are the values of a dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation], False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return _models_in(args[1])[0], True
    if origin in (typing.Union, types.UnionType, typing.Annotated, list):
        found: list[type[BaseModel]] = []
        in_dict = False
        for arg in args if origin is not typing.Annotated else args[:1]:
            models, dict_values = _models_in(arg)
            found += models
            in_dict = in_dict or dict_values
        return found, in_dict
    return [], False


def _at(data: Any, path: Sequence[Hashable]) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _of_kind(models: list[type[BaseModel]], data: Any) -> list[type[BaseModel]]:
    """The arms of a union that the data's ``kind`` picks (all of them when it picks none)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    picked = [m for m in models if kind in _kinds(m)]
    return picked or models


def _kinds(model: type[BaseModel]) -> tuple[Any, ...]:
    info = model.model_fields.get("kind")
    if info is None or typing.get_origin(info.annotation) is not Literal:
        return ()
    return typing.get_args(info.annotation)


def _level(data: Any, path: tuple[Hashable, ...]) -> _Level | None:
    """The level at ``path`` (None where keys are free or the path leaves the format)."""
    models: list[type[BaseModel]] = [SourceMapping]
    free_next = False
    for depth, part in enumerate(path):
        if free_next:  # a param name: the level below it is the dict's values
            free_next = False
            continue
        found: list[type[BaseModel]] = []
        for annotation in _field_annotation(models, part):
            inner, in_dict = _models_in(annotation)
            found += inner
            free_next = free_next or in_dict
        if not found:
            return None
        models = _of_kind(found, _at(data, path[: depth + 1]))
    if free_next:
        return None
    return _Level(path, tuple(models))


def _levels_below(data: Any, here: _Level) -> list[_Level]:
    """The levels one step down from ``here`` that are models (not free keys)."""
    below = (_level(data, (*here.path, key)) for key in here.known_keys())
    return [level for level in below if level is not None]


def _all_levels(data: Any) -> list[_Level]:
    """Every level of the format, top first (a param's spec as ``params.<name>``)."""
    levels: list[_Level] = []
    pending: list[tuple[Hashable, ...]] = [()]
    while pending:
        level = _level(data, pending.pop(0))
        if level is None:
            continue
        levels.append(level)
        for key in level.known_keys():
            child = (*level.path, key)
            pending.append(child if _level(data, child) else (*child, "<name>"))
    return levels


def _level_above(data: Any, here: _Level) -> _Level | None:
    return _level(data, here.path[:-1]) if here.path else None


def _other_kinds(above: _Level | None, here: _Level, key: str) -> str | None:
    """For a key of another kind of source than the one given: which kinds have it."""
    if above is None:
        return None
    arms = [m for a in _field_annotation(above.models, here.path[-1]) for m in _models_in(a)[0]]
    kinds_here = {k for m in here.models for k in _kinds(m)}
    having = [k for m in arms if key in _keys(m) for k in _kinds(m) if k not in kinds_here]
    if not having or not kinds_here:
        return None
    this = ", ".join(sorted(str(k) for k in kinds_here))
    return f"`{key}` is a key of {' and '.join(str(k) for k in having)} sources, not {this}"
