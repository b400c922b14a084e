"""What every recorded fact is: a frozen event with a stream and a JSON payload.

The class name is the stored `type` and is never renamed. `*_at` fields are UTC-aware
datetimes (ISO 8601 in JSON); `*_id` fields are strings; tuples are stored as lists.
Standard library only. The catalog of events is `monitor.events`.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every recorded fact."""

    VERSION: ClassVar[int] = 1
    # the stream is "<prefix>:<value of the field named>", e.g. ("feed", "feed_id")
    STREAM: ClassVar[tuple[str, str]]

    @property
    def stream(self) -> str:
        prefix, name = self.STREAM
        return f"{prefix}:{getattr(self, name)}"

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_data(self) -> dict[str, Any]:
        """The JSON payload: datetimes as ISO 8601 strings, tuples as lists."""
        return {name: _encode(getattr(self, name)) for name in _field_names(type(self))}

    @classmethod
    def from_data(cls: builtins.type[E], data: Mapping[str, Any]) -> E:
        names = _field_names(cls)
        kwargs = {k: _decode(k, v) for k, v in data.items() if k in names}
        return cls(**kwargs)


E = TypeVar("E", bound=Event)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    # dataclasses.fields() walks the class on every call; events are appended in bulk
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _encode(value: Any) -> Any:
    if type(value) in _PLAIN or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(name: str, value: Any) -> Any:
    if name.endswith("_at") and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value
