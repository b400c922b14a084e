"""Stored payloads brought forward to their event's current version, and decoded.

Each (type, from_version) upcaster is a pure `dict -> dict` producing from_version + 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from monitor.eventbase import Event
from monitor.events import EVENT_TYPES

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (type, from_version) -> upcaster producing version from_version + 1. None registered yet:
# every type is at version 1. Add entries here when a VERSION is bumped.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnknownEventTypeError(LookupError):
    """A stored type that this code does not know (written by a newer version)."""


def upcast(
    type_name: str,
    version: int,
    data: dict[str, Any],
    *,
    types: Mapping[str, type[Event]] = EVENT_TYPES,
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
) -> dict[str, Any]:
    """Bring a stored payload forward to the current VERSION of its type."""
    try:
        current = types[type_name].VERSION
    except KeyError:
        raise UnknownEventTypeError(f"event type '{type_name}' is unknown") from None
    while version < current:
        data = upcasters[(type_name, version)](dict(data))
        version += 1
    return data


def decode(
    type_name: str,
    version: int,
    data: dict[str, Any],
    *,
    types: Mapping[str, type[Event]] = EVENT_TYPES,
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
) -> Event:
    """Turn a stored (type, schema_version, data) back into its event, upcasting first."""
    payload = upcast(type_name, version, data, types=types, upcasters=upcasters)
    return types[type_name].from_data(payload)
