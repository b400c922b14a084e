"""A changed feed's entries, recorded in the poll's transaction: sightings, discoveries, decisions.

Each entry is identified (`identity.item_id`); an item already in the log is a sighting when
this feed had not carried it, otherwise nothing; a new item is discovered, matched against the
milestone rules, and its milestone decisions follow it in the log with it named as their cause.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor import evaluate, identity, revisions
from monitor.config import Config, Feed
from monitor.entries import Draft, Entry
from monitor.events import ItemDiscovered, ItemRevised, ItemSighted, MilestoneMatched
from monitor.match import Matcher
from monitor.milestones import MilestoneState
from monitor.oneline import one_line
from monitor.record import append_decisions
from monitor.rules import TimedOut
from monitor.store import NewEvent, Transaction

log = logging.getLogger("monitor.poll")


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
) -> ItemCounts:
    """Append what the entries mean, in entry order.

    One query finds the items already known, and one each the dedupe keys and streams of the
    events they bring (Transaction.expect). The new, sighted and revised ones are appended in
    runs, a run ending at each new or revised item that matches a milestone so that the item's
    decisions follow it and name its position as their cause. A draft is built only when its
    item is new, or known from this feed (it may be a revision, see `monitor.revisions`).
    """
    entries, rows = _apart(tx, feed, entries, tx.states("items", list(entries)))
    known = {iid: s.get("feeds", []) for iid, s in rows.items()}
    mine = [iid for iid in entries if (known.get(iid) or [None])[0] == feed.id]
    texts = _last_texts(tx, mine)
    news: list[tuple[NewEvent, Entry | None]] = []  # a discovery or revision with its entry
    for iid, given in entries.items():
        if iid in texts:
            full = _full(given)
            revision = revisions.revised(feed.id, iid, full, texts[iid])
            if revision is not None:
                key = revisions.dedupe_key(revision)
                news.append((NewEvent(revision, dedupe_key=key, meta=dict(meta)), full))
        elif iid in known:
            if feed.id not in known[iid]:
                seen = ItemSighted(item_id=iid, feed_id=feed.id)
                key = f"sighted:{iid}:{feed.id}"
                news.append((NewEvent(seen, dedupe_key=key, meta=dict(meta)), None))
        else:
            full = _full(given)
            found = _discovered(feed, full, iid)
            news.append((NewEvent(found, dedupe_key=f"item:{iid}", meta=dict(meta)), full))
    tx.expect([new for new, _ in news])
    states: dict[str, MilestoneState] = {}
    run: list[NewEvent] = []
    counts = ItemCounts()
    for new, entry in news:
        run.append(new)
        item = new.event
        if entry is None or not isinstance(item, ItemDiscovered | ItemRevised):
            counts.sighted += 1
            continue
        doc = evaluate.doc_of(entry.title, entry.summary, entry.content)
        verdicts, late = evaluate.evaluate_timed(matcher, doc)
        if late:
            _warn_timed_out(feed, item.item_id, entry.title, late)
        if isinstance(item, ItemRevised):
            counts.revised += 1
            _warn_last_revision(feed, item)
            verdicts = revisions.fresh(verdicts, _matched(tx, item.item_id, verdicts))
        else:
            counts.discovered += 1
        if verdicts:
            done = tx.append(run)[-1]
            run = []
            if not done.existed:  # known after all (the log is the judge): decided before
                causes = {**meta, "causation": done.position}
                counts.transitions += _decide(
                    tx, config, matcher, item, doc, verdicts, states, causes, now
                )
    tx.append(run)
    return counts


@dataclass(slots=True)
class ItemCounts:
    """What a changed poll's entries brought: items new to the log, known items this feed
    carries for the first time, known items whose text this feed changed, and the milestone
    transitions they caused."""

    discovered: int = 0
    sighted: int = 0
    revised: int = 0
    transitions: int = 0


def _last_texts(tx: Transaction, item_ids: Sequence[str]) -> dict[str, revisions.LastText]:
    """The text the log holds for each of these known items, read from their streams."""
    if not item_ids:
        return {}
    history = tx.history([f"item:{iid}" for iid in item_ids])
    texts = {iid: revisions.last_text(history.get(f"item:{iid}", [])) for iid in item_ids}
    return {iid: text for iid, text in texts.items() if text is not None}


def _matched(
    tx: Transaction, item_id: str, verdicts: Sequence[evaluate.MilestoneHit]
) -> set[tuple[str, str]]:
    """The (milestone, kind) evidence the item gave before, of the milestones in `verdicts`."""
    keys = [k for v in verdicts for k in revisions.match_keys(v.milestone_id, item_id)]
    found = tx.keyed(keys)
    return {(str(d.get("milestone_id")), str(d.get("kind"))) for d in found.values()}


def _warn_last_revision(feed: Feed, item: ItemRevised) -> None:
    if item.revision == revisions.MAX_REVISIONS:
        log.warning(
            "feed '%s': item %s was revised %d times; later revisions are not recorded",
            feed.id,
            item.item_id,
            item.revision,
            extra={"feed": feed.id},
        )


def _warn_timed_out(feed: Feed, item_id: str, title: str, late: Sequence[TimedOut]) -> None:
    """One warning for the item: the regex searches that ran out of time, taken as no match."""
    shown = one_line(title)
    shown = shown if len(shown) <= 60 else shown[:59] + "…"  # hostile text: name it, no more
    sentences = "; ".join(map(evaluate.timed_out_sentence, late))
    log.warning(
        "feed '%s': item %s (%r): %s", feed.id, item_id, shown, sentences, extra={"feed": feed.id}
    )


def _apart(
    tx: Transaction,
    feed: Feed,
    entries: Mapping[str, Entry | Draft],
    rows: Mapping[str, Mapping[str, Any]],
) -> tuple[Mapping[str, Entry | Draft], Mapping[str, Mapping[str, Any]]]:
    """Entries under ids of their own where a scheme-less GUID names another article.

    A GUID such as `1` or `tn-1` is unique only among its publisher's items: an entry whose
    GUID's id another feed's item holds is that item only when it is the same article (see
    `_same_article`); otherwise it is identified by its GUID within its publisher
    (`identity.scoped_item_id`), and the state rows are read again for the new ids."""
    moved: dict[str, str] = {}
    for iid, given in entries.items():
        row = rows.get(iid)
        guid = given.guid
        if row is None or feed.id in row.get("feeds", []) or guid is None:
            continue
        if identity.global_guid(guid) or _same_article(row, full := _full(given)):
            continue
        scope = identity.publisher(full.source_url or full.link) or f"feed:{feed.id}"
        moved[iid] = identity.scoped_item_id(guid, scope)
    if not moved:
        return entries, rows
    found = tx.states("items", list(moved.values()))
    kept = {iid: row for iid, row in rows.items() if iid not in moved}
    return {moved.get(iid, iid): e for iid, e in entries.items()}, {**kept, **found}


def _same_article(row: Mapping[str, Any], entry: Entry) -> bool:
    """Whether a recorded item (its `items` row) and an entry are one article: the same
    publisher, or, where either names none, the same canonical link, else the same title (the
    one it was discovered with or its latest revision's: another feed may carry either)."""
    mine, theirs = identity.publisher(entry.source_url or entry.link), row.get("publisher")
    if mine and theirs:
        return bool(mine == theirs)
    if entry.link and row.get("url"):
        return bool(identity.canonical_url(entry.link) == row["url"])
    return entry.title in (row.get("title"), row.get("discovered_title"))


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
    item: ItemDiscovered | ItemRevised,
    doc: Mapping[str, str],
    verdicts: Sequence[evaluate.MilestoneHit],
    states: dict[str, MilestoneState],
    meta: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Append a new or revised item's milestone decisions; True when one of them notifies."""
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
    dedupe = {}
    if isinstance(item, ItemRevised):  # one match of each kind per milestone and item
        dedupe = {
            i: revisions.match_key(e.milestone_id, e.item_id, e.kind)
            for i, e in enumerate(events)
            if isinstance(e, MilestoneMatched)
        }
    append_decisions(tx, config, events, now=now, meta=meta, dedupe=dedupe)
    return bool(evaluate.notifying(events))


def _load_states(tx: Transaction, states: dict[str, MilestoneState], ids: Sequence[str]) -> None:
    """Fill `states` with the milestones not loaded yet, read from the log's projection."""
    missing = [mid for mid in dict.fromkeys(ids) if mid not in states]
    found = tx.states("milestones", missing)
    for mid in missing:
        states[mid] = MilestoneState.from_json(found.get(mid))
