"""A changed feed's entries, recorded in the poll's transaction: sightings, discoveries, decisions.

Each entry is identified (`identity.item_id`); an item already in the log is a sighting when
this feed had not carried it, otherwise nothing; a new item is discovered, matched against the
milestone rules, and its milestone decisions follow it in the log with it named as their cause.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor import evaluate, identity
from monitor.config import Config, Feed
from monitor.entries import Draft, Entry
from monitor.events import ItemDiscovered, ItemSighted
from monitor.match import Matcher
from monitor.milestones import MilestoneState
from monitor.record import append_decisions
from monitor.store import NewEvent, Transaction


def by_item_id(entries: Iterable[Entry | Draft]) -> dict[str, Entry | Draft]:
    """Entries keyed by item id, in feed order; of entries sharing one GUID, the first speaks.

    A draft with a guid or a link is identified without being built.
    """
    keyed: dict[str, Entry | Draft] = {}
    for entry in entries:
        if entry.guid or entry.link:
            iid = identity.item_id(guid=entry.guid, link=entry.link, title="", summary="")
        else:
            full = _full(entry)
            iid = identity.item_id(guid=None, link=None, title=full.title, summary=full.summary)
        keyed.setdefault(iid, entry)
    return keyed


def _full(entry: Entry | Draft) -> Entry:
    return entry.build() if isinstance(entry, Draft) else entry


def newest_published(entries: Iterable[Entry | Draft], newest: float | None) -> float | None:
    """The latest publication time (epoch seconds) of the entries and `newest`."""
    for entry in entries:
        if entry.published_at is not None:
            ts = entry.published_at.timestamp()
            newest = ts if newest is None else max(newest, ts)
    return newest


def record_items(
    tx: Transaction,
    config: Config,
    matcher: Matcher,
    feed: Feed,
    entries: Mapping[str, Entry | Draft],
    *,
    meta: Mapping[str, Any],
    now: datetime,
) -> tuple[int, int, int]:
    """Append what the entries mean, in entry order: (discovered, sighted, transitions).

    One query finds the items already known, and one each the dedupe keys and streams of the
    events they bring (Transaction.expect). The new and sighted ones are appended in runs, a
    run ending at each new item that matches a milestone so that the item's decisions follow
    it and name its position as their cause. A draft is built only when its item is new.
    """
    known = {iid: s.get("feeds", []) for iid, s in tx.states("items", list(entries)).items()}
    news: list[tuple[NewEvent, Entry | None]] = []  # a discovery with its entry, or a sighting
    for iid, given in entries.items():
        if iid in known:
            if feed.id not in known[iid]:
                seen = ItemSighted(item_id=iid, feed_id=feed.id)
                key = f"sighted:{iid}:{feed.id}"
                news.append((NewEvent(seen, dedupe_key=key, meta=dict(meta)), None))
            continue
        full = _full(given)
        found = _discovered(feed, full, iid)
        news.append((NewEvent(found, dedupe_key=f"item:{iid}", meta=dict(meta)), full))
    tx.expect([new for new, _ in news])
    states: dict[str, MilestoneState] = {}
    run: list[NewEvent] = []
    discovered = sighted = transitions = 0
    for new, entry in news:
        run.append(new)
        item = new.event
        if entry is None or not isinstance(item, ItemDiscovered):
            sighted += 1
            continue
        doc = evaluate.doc_of(entry.title, entry.summary, entry.content)
        verdicts = evaluate.evaluate(matcher, doc)
        notified = False
        if verdicts:
            done = tx.append(run)[-1]
            run = []
            if not done.existed:  # known after all (the log is the judge): decided before
                causes = {**meta, "causation": done.position}
                notified = _decide(tx, config, matcher, item, doc, verdicts, states, causes, now)
        transitions += notified
        discovered += 1
    tx.append(run)
    return discovered, sighted, transitions


def _discovered(feed: Feed, entry: Entry, iid: str) -> ItemDiscovered:
    return ItemDiscovered(
        item_id=iid,
        feed_id=feed.id,
        url=identity.canonical_url(entry.link) if entry.link else None,
        guid=entry.guid,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        published_at=entry.published_at,
        publisher=identity.publisher(entry.source_url or entry.link),
        language=entry.language,
    )


def _decide(
    tx: Transaction,
    config: Config,
    matcher: Matcher,
    item: ItemDiscovered,
    doc: Mapping[str, str],
    verdicts: Sequence[evaluate.MilestoneHit],
    states: dict[str, MilestoneState],
    meta: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Append one new item's milestone decisions; True when one of them notifies."""
    _load_states(tx, states, [v.milestone_id for v in verdicts])
    events = evaluate.item_events(
        config,
        matcher,
        states,
        item_id=item.item_id,
        doc=doc,
        publisher=item.publisher,
        published_at=item.published_at,
        now=now,
        verdicts=verdicts,
    )
    append_decisions(tx, config, events, now=now, meta=meta)
    return bool(evaluate.notifying(events))


def _load_states(tx: Transaction, states: dict[str, MilestoneState], ids: Sequence[str]) -> None:
    """Fill `states` with the milestones not loaded yet, read from the log's projection."""
    missing = [mid for mid in dict.fromkeys(ids) if mid not in states]
    found = tx.states("milestones", missing)
    for mid in missing:
        states[mid] = MilestoneState.from_json(found.get(mid))
