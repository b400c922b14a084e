"""Start-up and periodic facts shared by the daemon and the commands.

Opening the store with its projections, recording ConfigApplied when the configuration
differs from the last one applied, enabling webhook channels whose URL changed after a 410,
recording configured baselines once, and the deadline check. Each runs in its own transaction.
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
from monitor.channels.webhook import url_sha256
from monitor.config import Baseline, Config, WebhookChannel, redacted
from monitor.errors import ConflictError
from monitor.events import (
    ChannelEnabled,
    ConfigApplied,
    MilestoneSourceCorrected,
    MilestoneStatusChanged,
)
from monitor.milestones import MilestoneState, since_of
from monitor.projections import all_projections
from monitor.record import append_decisions
from monitor.review import local
from monitor.store import EventStore, NewEvent, Recorded, Transaction

CONFIG_STREAM = "config:main"
KINDS = ("feeds", "milestones", "channels")


def instance_name() -> str:
    """Who wrote an event: host, process and a random suffix (two daemons never collide)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def open_store(config: Config, *, read_only: bool = False) -> EventStore:
    """The configured log; `read_only` for commands that only read (it creates nothing)."""
    url = config.settings.database_url
    store = EventStore.open(url, projections=all_projections(), read_only=read_only)
    if not read_only:
        workstate.ensure(store)
    return store


def fingerprints(config: Config) -> dict[str, dict[str, str]]:
    """kind -> id -> sha256 of that part's effective settings (secrets are only env names).

    Feeds show their effective interval, and a milestone includes the aliases its rules use,
    so a changed poll_interval or alias marks exactly the parts it changes.
    """
    plain = redacted(config)
    out: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        out[kind] = {}
        for part in plain.get(kind, []):
            used = {a: config.aliases[a] for a in _aliases_in(part) if a in config.aliases}
            out[kind][str(part["id"])] = _sha({**part, "aliases_used": used} if used else part)
    out["settings"] = {"settings": _sha(plain.get("settings", {}))}
    return out


def _sha(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def _aliases_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value[1:]} if value.startswith("@") else set()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return set().union(*(_aliases_in(v) for v in value)) if value else set()
    return set()


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


def apply_config(store: EventStore, config: Config, *, instance: str) -> ConfigApplied | None:
    """Record ConfigApplied unless the last one recorded is this very configuration.

    Only the stream's last event is read: the stream gains one at every reload, for ever."""
    for _ in range(5):
        last = store.last(CONFIG_STREAM)
        version = last.stream_version if last is not None else 0
        if last is not None and last.data.get("config_sha256") == config.sha256:
            return None
        new = fingerprints(config)
        old = last.data.get("fingerprints", {}) if last is not None else {}
        event = ConfigApplied(
            config_sha256=config.sha256, fingerprints=new, **config_change(old, new)
        )
        try:
            store.append([NewEvent(event, expected_version=version, meta={"instance": instance})])
            return event
        except ConflictError:
            continue  # another daemon recorded one meanwhile: look again
    return None


def enabled_key(channel_id: str, state: Mapping[str, Any]) -> str:
    """One enabling per disabling: daemons that see the same changed URL record it once."""
    return f"enabled:{channel_id}:{state.get('since')}"


def enable_moved_channels(
    store: EventStore, config: Config, *, instance: str
) -> list[ChannelEnabled]:
    """Webhook channels disabled by a 410 whose configured URL has changed since then take
    alerts again. A disabling recorded without the URL's sha256 waits for an operator."""
    hooks = {c.id: url_sha256(c.url) for c in config.channels if isinstance(c, WebhookChannel)}

    def moved(states: Mapping[str, Mapping[str, Any]]) -> list[str]:
        return [
            cid
            for cid, row in states.items()
            if row.get("disabled") and row.get("url_sha256") not in (None, hooks[cid])
        ]

    if not moved(store.states_of("channels", list(hooks))):
        return []  # the usual case: no write transaction
    meta = {"instance": instance}
    with store.transaction() as tx:
        rows = tx.states("channels", list(hooks))
        events = [
            ChannelEnabled(channel_id=cid, reason="its url changed after the channel was disabled")
            for cid in moved(rows)
        ]
        done = tx.append(
            [
                NewEvent(e, dedupe_key=enabled_key(e.channel_id, rows[e.channel_id]), meta=meta)
                for e in events
            ]
        )
    return [e for e, d in zip(events, done, strict=True) if not d.existed]


def _states(tx: Transaction, config: Config) -> dict[str, MilestoneState]:
    found = tx.states("milestones", [m.id for m in config.milestones])
    return {m.id: MilestoneState.from_json(found.get(m.id)) for m in config.milestones}


def record_baselines(
    store: EventStore, config: Config, *, instance: str, now: datetime
) -> list[MilestoneStatusChanged | MilestoneSourceCorrected]:
    """Configured baselines, each recorded once ever (its dedupe key survives restarts), and a
    correction for each recorded baseline whose `source` was edited since (none is alerted)."""
    meta = {"instance": instance, "operator": "configuration"}
    with store.transaction() as tx:
        changes = evaluate.baseline_events(config, _states(tx, config))
        keys = {
            i: _baseline_key(c.milestone_id, config.milestone(c.milestone_id).baseline)
            for i, c in enumerate(changes)
        }
        done = append_decisions(tx, config, changes, now=now, dedupe=keys, meta=meta, alert=False)
        cited = _configured_sources(store, tx, config)
        # read again: a baseline just recorded carries its source already
        corrections = evaluate.baseline_corrections(
            config,
            _states(tx, config),
            {k: (source, since) for k, (_, source, since) in cited.items()},
        )
        after = {
            i: _source_key(c.milestone_id, cited[c.milestone_id][0])
            for i, c in enumerate(corrections)
        }
        done_after = append_decisions(
            tx, config, corrections, now=now, dedupe=after, meta=meta, alert=False
        )
    recorded = [c for c, d in zip(changes, done, strict=True) if not d.existed]
    return [*recorded, *(c for c, d in zip(corrections, done_after, strict=True) if not d.existed)]


def _configured_sources(
    store: EventStore, tx: Transaction, config: Config
) -> dict[str, tuple[int, str, datetime]]:
    """Milestone id -> (position, source, since): what the configuration last cited for its
    recorded baseline, the baseline's own event or a correction from the configuration since,
    and the since that baseline recorded. A note's correction is not the configuration's: an
    unchanged feeds.toml leaves it in effect.

    The configuration's corrections are found by their dedupe keys, each naming the position
    of the citation it replaced (`record_baselines`): a lookup each, where reading the
    milestone's stream for them read every match it ever had.
    """
    out: dict[str, tuple[int, str, datetime]] = {}
    for m in config.milestones:
        if m.baseline is None:
            continue
        position = tx.find_dedupe(_baseline_key(m.id, m.baseline))
        recorded = store.get(position) if position is not None else None
        if position is None or recorded is None:  # not yet, or just now in this transaction
            continue
        baseline = recorded.event
        assert isinstance(baseline, MilestoneStatusChanged)
        cited = (position, str(baseline.source))
        while (later := tx.find_dedupe(_source_key(m.id, cited[0]))) is not None:
            corrected = store.get(later)
            if corrected is None:  # just now in this transaction
                break
            cited = (later, str(corrected.data["source"]))
        out[m.id] = (*cited, since_of(baseline, recorded.recorded_at))
    return out


def _source_key(milestone_id: str, cited: int) -> str:
    """One correction may follow each source the configuration cited (at position `cited`):
    two daemons starting together record it once."""
    return f"baseline-source:{milestone_id}:{cited}"


def _baseline_key(milestone_id: str, baseline: Baseline | None) -> str:
    assert baseline is not None
    return f"baseline:{milestone_id}:{baseline.status}:{baseline.since.isoformat()}"


def _first_change(store: EventStore, milestone_id: str) -> Recorded | None:
    """The milestone's first transition, the only one that may be its baseline: a baseline is
    recorded only while the milestone has no since (`evaluate.baseline_events`), which every
    transition sets. It is read off the start of the stream, where the first match already
    moved the milestone: reading the whole stream for the baseline read every match."""
    found = store.read(
        stream=f"milestone:{milestone_id}", types=("MilestoneStatusChanged",), batch=1
    )
    return next(iter(found), None)


def baseline_conflicts(store: EventStore, config: Config) -> list[str]:
    """One line for each configured baseline that the log does not hold and will not record:
    the milestone had a status before the baseline was added, or its status or since was
    edited after it was recorded. Both are history the log keeps (`evaluate.baseline_events`);
    the operator declares a new status with `monitor note`."""
    out = []
    found = store.states_of("milestones", [m.id for m in config.milestones if m.baseline])
    for m in config.milestones:
        state = MilestoneState.from_json(found.get(m.id))
        if m.baseline is None or state.since is None:
            continue
        prefix = f"baseline:{m.id}:"
        first = _first_change(store, m.id)
        keys = [str(first.dedupe_key)] if first and str(first.dedupe_key).startswith(prefix) else []
        if keys and keys[-1] == _baseline_key(m.id, m.baseline):
            continue
        where = f"milestones '{m.id}': baseline {m.baseline.status} since {m.baseline.since}"
        if keys:
            status, since = keys[-1].removeprefix(prefix).split(":", 1)
            problem = f"differs from the one recorded ({status} since {since})"
        else:
            since = local(state.since, config.settings.timezone)
            problem = (
                f"not recorded: the log held a status first ({state.status.value} since {since})"
            )
        out.append(
            f"{where} {problem} and is ignored; `monitor note {m.id} --status STATUS --source URL`"
            " declares a status"
        )
    return out


def check_deadlines(
    store: EventStore, config: Config, *, instance: str, now: datetime
) -> list[MilestoneStatusChanged]:
    """Milestones whose `expected_by` passed unconfirmed become overdue, once."""
    with store.transaction() as tx:
        changes = evaluate.deadline_events(config, _states(tx, config), now)
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
