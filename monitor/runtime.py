"""Start-up and periodic facts shared by the daemon and the commands.

Opening the store with its projections, recording ConfigApplied when the configuration
differs from the last one applied, recording configured baselines once, and the deadline
check. Each runs in its own transaction.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from monitor import evaluate, workstate
from monitor.config import Config, redacted
from monitor.errors import ConflictError
from monitor.events import ConfigApplied, MilestoneStatusChanged
from monitor.milestones import MilestoneState
from monitor.projections import all_projections
from monitor.record import append_decisions
from monitor.store import EventStore, NewEvent

CONFIG_STREAM = "config:main"
KINDS = ("feeds", "milestones", "channels")


def instance_name() -> str:
    """Who wrote an event: host, process and a random suffix (two daemons never collide)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def open_store(config: Config) -> EventStore:
    store = EventStore.open(config.settings.database_url, projections=all_projections())
    workstate.ensure(store)
    return store


def fingerprints(config: Config) -> dict[str, dict[str, str]]:
    """kind -> id -> sha256 of that part's effective settings (secrets are only env names)."""
    plain = redacted(config)
    out: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        out[kind] = {
            str(part["id"]): hashlib.sha256(
                orjson.dumps(part, option=orjson.OPT_SORT_KEYS, default=str)
            ).hexdigest()
            for part in plain.get(kind, [])
        }
    settings = orjson.dumps(plain.get("settings", {}), option=orjson.OPT_SORT_KEYS, default=str)
    out["settings"] = {"settings": hashlib.sha256(settings).hexdigest()}
    return out


def config_change(
    old: Mapping[str, Mapping[str, str]], new: Mapping[str, Mapping[str, str]]
) -> dict[str, tuple[str, ...]]:
    """What was added, removed and changed, in ConfigApplied's field names."""
    out: dict[str, tuple[str, ...]] = {}
    for kind in KINDS:
        a, b = old.get(kind, {}), new.get(kind, {})
        out[f"{kind}_added"] = tuple(sorted(set(b) - set(a)))
        out[f"{kind}_removed"] = tuple(sorted(set(a) - set(b)))
        out[f"{kind}_changed"] = tuple(sorted(k for k in set(a) & set(b) if a[k] != b[k]))
    return out


def apply_config(
    store: EventStore, config: Config, *, instance: str, now: datetime
) -> ConfigApplied | None:
    """Record ConfigApplied unless the last one recorded is this very configuration."""
    for _ in range(5):
        last: Any = None
        for record in store.read(stream=CONFIG_STREAM):
            last = record
        version = last.stream_version if last is not None else 0
        if last is not None and last.data.get("config_sha256") == config.sha256:
            return None
        new = fingerprints(config)
        old = last.data.get("fingerprints", {}) if last is not None else {}
        event = ConfigApplied(
            config_sha256=config.sha256, fingerprints=new, **config_change(old, new)
        )
        try:
            store.append(
                [NewEvent(event, expected_version=version, meta={"instance": instance})]
            )
            return event
        except ConflictError:
            continue  # another daemon recorded one meanwhile: look again
    return None


def _states(store: EventStore, config: Config) -> dict[str, MilestoneState]:
    return {
        m.id: MilestoneState.from_json(store.state("milestones", m.id)) for m in config.milestones
    }


def record_baselines(
    store: EventStore, config: Config, *, instance: str, now: datetime
) -> list[MilestoneStatusChanged]:
    """Configured baselines, each recorded once ever (its dedupe key survives restarts)."""
    with store.transaction() as tx:
        states = {
            m.id: MilestoneState.from_json(tx.state("milestones", m.id)) for m in config.milestones
        }
        changes = evaluate.baseline_events(config, states)
        keys = {i: _baseline_key(config, c) for i, c in enumerate(changes)}
        done = append_decisions(
            tx,
            config,
            changes,
            now=now,
            dedupe=keys,
            meta={"instance": instance, "operator": "configuration"},
            alert=False,
        )
    return [c for c, d in zip(changes, done, strict=True) if not d.existed]


def _baseline_key(config: Config, change: MilestoneStatusChanged) -> str:
    baseline = config.milestone(change.milestone_id).baseline
    assert baseline is not None
    return f"baseline:{change.milestone_id}:{baseline.status}:{baseline.since.isoformat()}"


def check_deadlines(
    store: EventStore, config: Config, *, instance: str, now: datetime
) -> list[MilestoneStatusChanged]:
    """Milestones whose `expected_by` passed unconfirmed become overdue, once."""
    with store.transaction() as tx:
        states = {
            m.id: MilestoneState.from_json(tx.state("milestones", m.id)) for m in config.milestones
        }
        changes = evaluate.deadline_events(config, states, now)
        keys = {
            i: f"overdue:{c.milestone_id}:{config.milestone(c.milestone_id).expected_by}"
            for i, c in enumerate(changes)
        }
        done = append_decisions(
            tx,
            config,
            changes,
            now=now,
            dedupe=keys,
            meta={"instance": instance, "correlation": "deadline"},
        )
    return [c for c, d in zip(changes, done, strict=True) if not d.existed]
