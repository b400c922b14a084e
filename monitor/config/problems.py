"""Problems as people read them: key paths and plain sentences from pydantic's error list."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from monitor.config.models import ConfigFile
from monitor.config.values import toml_type

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

SECTIONS = ("settings", "feeds", "channels", "aliases", "milestones")
LITERAL_SECRETS = ("password", "secret")
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "float_type": "a number",
    "tuple_type": "an array",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "date_type": "a date such as 2027-03-31",
    "date_parsing": "a date such as 2027-03-31",
    "date_from_datetime_inexact": "a date such as 2027-03-31",
}
_EMPTY = "must not be empty"
_MISSING = "required key is missing"
_ID_RULE = "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"


def key_path(loc: Loc) -> str:
    """`("milestones", 1, "notify", 0)` → `milestones[1].notify[0]`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if part.replace("_", "").replace("-", "").isalnum() else f'"{part}"'
            text += f".{name}" if text else name
    return text


def suggestion(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for a near miss, else nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def in_file_order(problems: Sequence[Problem]) -> list[Problem]:
    """Sort by section, then entry; the order inside one entry is kept as found."""

    def rank(problem: Problem) -> tuple[int, int]:
        loc = problem[0]
        section = SECTIONS.index(loc[0]) if loc and loc[0] in SECTIONS else len(SECTIONS)
        entry = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else -1
        return section, entry

    return sorted(problems, key=rank)


def translate(errors: Iterable[ErrorDetails]) -> list[Problem]:
    """Each pydantic error as (key path without discriminator tags, sentence)."""
    problems = [_translate(error) for error in errors]
    return [(loc, message) for loc, message in problems if not _echo(loc, message, problems)]


def _echo(loc: Loc, message: str, problems: list[Problem]) -> bool:
    """Whether this problem only repeats another one that says more."""
    if message == _EMPTY:  # its only items failed, and each says why
        return any(other[: len(loc)] == loc and other != loc for other, _ in problems)
    if message == _MISSING and str(loc[-1]).endswith("_env"):  # the literal secret says it
        literal = (*loc[:-1], str(loc[-1]).removesuffix("_env"))
        return any(other == literal for other, _ in problems)
    return False


def _translate(error: ErrorDetails) -> Problem:
    kind, value = error["type"], error.get("input")
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    loc, _ = _resolve(error["loc"])
    if kind in _EXPECTED:
        return loc, f"expected {_EXPECTED[kind]}, got {_describe(value)}"
    if kind == "extra_forbidden":
        return loc, _unknown_key(error["loc"])
    if kind == "missing":
        return loc, _MISSING
    if kind == "union_tag_not_found":
        return (*loc, "type"), 'required key is missing (type = "email" or "webhook")'
    if kind == "union_tag_invalid":
        return (*loc, "type"), f"{ctx['tag']!r} is not one of {ctx['expected_tags']}"
    if kind == "literal_error":
        return loc, f"{value!r} is not one of {ctx['expected']}"
    if kind == "string_pattern_mismatch":
        return loc, f"{value!r} is not a valid id ({_ID_RULE})"
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return loc, _EMPTY
    if kind == "greater_than_equal":
        return loc, f"must be at least {_shown(ctx['ge'])}, got {_shown(value)}"
    if kind == "less_than_equal":
        return loc, f"must be at most {_shown(ctx['le'])}, got {_shown(value)}"
    if kind == "value_error":
        return loc, str(ctx["error"])
    message = error["msg"]
    return loc, message[:1].lower() + message[1:]


def _shown(value: Any) -> str:
    """A bound or value as written in TOML: dates bare (2027-03-31; pydantic gives a date
    bound as text), numbers as they are."""
    return value.isoformat() if isinstance(value, date) else str(value)


def _describe(value: Any) -> str:
    name = toml_type(value)
    if isinstance(value, list | dict):
        return f"an {name}" if name[0] in "aeiou" else f"a {name}"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    return f"{name} {value!r}" if name in ("string", "integer", "float") else f"{name} {value}"


def _unknown_key(raw_loc: Loc) -> str:
    key = str(raw_loc[-1])
    if key in LITERAL_SECRETS:
        return (
            "secrets are never written in the configuration; "
            f'name the environment variable that holds it: {key}_env = "MONITOR_…"'
        )
    _, model = _resolve(raw_loc[:-1])
    known = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else ()
    return "unknown key" + suggestion(key, known)


def _resolve(raw_loc: Loc) -> tuple[Loc, Any]:
    """Drop pydantic's discriminator tags and `[key]` markers; also return the type reached."""
    clean: list[str | int] = []
    current: Any = ConfigFile
    for part in raw_loc:
        if part == "[key]":
            continue
        kind = _unwrap(current)
        if isinstance(kind, tuple) and isinstance(part, str):
            current = next((m for m in kind if _tag(m) == part), None)
            continue
        clean.append(part)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            current = field.annotation if field else None
        elif get_origin(kind) in (tuple, dict):
            current = get_args(kind)[-1 if get_origin(kind) is dict else 0]
        else:
            current = None
    return tuple(clean), _unwrap(current)


def _unwrap(kind: Any) -> Any:
    """Strip Annotated and Optional; a union of models becomes a tuple of them."""
    while get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    if get_origin(kind) in (typing.Union, types.UnionType):
        members = [_unwrap(m) for m in get_args(kind) if m is not type(None)]
        return members[0] if len(members) == 1 else tuple(members)
    return kind


def _tag(model: Any) -> Any:
    field = model.model_fields.get("type") if hasattr(model, "model_fields") else None
    return get_args(field.annotation)[0] if field is not None else None
