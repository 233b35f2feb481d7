"""pydantic's validation errors -> one line per dotted params.yaml key, with the rule and the fix."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ValidationError,
)

from lifecycle.config.rules import DEFAULT_PARAMS


# --------------------------------------------------------------------------------------------- messages
def _explain(exc: ValidationError, root: type[BaseModel], source: str = DEFAULT_PARAMS, prefix: str = "") -> str:
    """pydantic's errors of validating ``root`` -> one line per key: ``{source}: {dotted.key}: {rule and fix}``.

    ``prefix``: the dotted key of ``root`` itself in params.yaml (empty for :class:`Params`).
    """
    from lifecycle.config import Params  # the package's root model, built after this module

    groups: dict[str, list[tuple[Mapping[str, Any], Any, type[BaseModel] | None]]] = {}
    for err in exc.errors(include_url=False):
        dotted, hint, holder = _locate(root, err["loc"])
        at = (err.get("ctx") or {}).get("at", "")
        key = ".".join(part for part in (prefix, dotted, at) if part)
        groups.setdefault(key, []).append((err, hint, holder))
    lines = []
    for key, errors in groups.items():
        if any(other.startswith((f"{key}.", f"{key}[")) for other in groups):
            continue  # a union member that does not fit at all, while another fits but has a bad item: report that
        err, _, holder = errors[0]
        if err["type"] == "missing" and holder is Params and "." not in key:
            lines.append(f"{source}: section '{key}' is missing; add it (see README, 'Parameters')")
        else:
            lines.append(f"{source}: {key}: {_describe(errors, key)}")
    return "\n".join(lines)


def _locate(root: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str, Any, type[BaseModel] | None]:
    """pydantic's error location -> (dotted key as params.yaml spells it, the type declared there, the model
    holding the last key). Union member tags in ``loc`` (``'str'``, ``'list[str]'``) are dropped."""
    parts: list[str] = []
    hint: Any = root  # the type where the walk is (a union's member after its tag)
    declared: Any = root  # the type declared at the last key
    holder: type[BaseModel] | None = None
    for item in loc:
        base = _unwrap(hint)
        if _is_union(base):
            members = [m for m in typing.get_args(base) if m is not type(None)]
            tagged = [m for m in members if _name(m) == item]
            if tagged:  # a member's tag, not a key
                hint = tagged[0]
                continue
            base = _unwrap(members[0]) if len(members) == 1 else None
        if isinstance(base, type) and issubclass(base, BaseModel):
            holder = base
            parts.append(f".{item}")
            hint = base.model_fields[item].annotation if item in base.model_fields else None
        elif typing.get_origin(base) is list:
            parts.append(f"[{item}]")
            hint = typing.get_args(base)[0]
        elif typing.get_origin(base) is dict:
            parts.append(f".{item}")
            hint = typing.get_args(base)[1]
        else:
            parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
            hint = None
        declared = hint
    return "".join(parts).lstrip("."), declared, holder


_TYPE_NAMES = {"int_type": "int", "float_type": "a number", "bool_type": "bool", "string_type": "str"}


def _describe(errors: list[tuple[Mapping[str, Any], Any, type[BaseModel] | None]], key: str) -> str:
    """The rule and fix for one key, from pydantic's error(s) there (several: the members of a union)."""
    rules = [err for err, _, _ in errors if err["type"] == "params"]
    if rules:
        return str(rules[0]["ctx"]["message"])
    err, hint, holder = errors[0]
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        known = list(holder.model_fields) if holder else []
        parent = key.rpartition(".")[0]
        last = key.rpartition(".")[2]
        close = difflib.get_close_matches(last, known, n=1)
        hint_text = f"did you mean '{parent + '.' if parent else ''}{close[0]}'? " if close else ""
        return f"unknown key; {hint_text}known keys here: {', '.join(sorted(known))}"
    if kind == "missing":
        return "missing key; add it to params.yaml"
    if kind in ("model_type", "model_attributes_type"):
        return f"expected a mapping of keys, got {value!r}"
    if len(errors) > 1 or (_is_union(_unwrap(hint)) and kind in (*_TYPE_NAMES, "list_type", "none_required")):
        return f"{value!r} does not fit type {_name(hint)}"
    if kind == "literal_error":
        choices = typing.get_args(_unwrap(hint)) if hint is not None else ()
        return f"{value!r} is not allowed; use one of: {', '.join(map(str, choices))}"
    if kind == "dict_type":
        return f"expected a mapping, got {value!r}"
    if kind == "list_type":
        return f"expected a list, got {value!r}"
    if kind == "none_required":
        return "expected null"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {value!r} ({type(value).__name__})"
    return str(err["msg"])


def _unwrap(hint: Any) -> Any:
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _name(hint: Any) -> str:
    """A type as params.yaml's reader knows it: ``int``, ``str | float | None``, ``list[str]``."""
    hint = _unwrap(hint)
    if hint is type(None):
        return "None"
    if _is_union(hint):
        return " | ".join(_name(m) for m in typing.get_args(hint))
    origin = typing.get_origin(hint)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_name(a) for a in typing.get_args(hint))}]"
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
