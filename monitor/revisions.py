"""Edited items: a known item whose title or summary changed in the feed that first carried it.

A publisher that rewrites "Noetra starts training" as "Noetra postpones training" under the
same GUID has said something new. The poll records the new text as ItemRevised and matches it
against the rules; a milestone the item already gave evidence of the same kind is not matched
again. Only the feed that discovered the item speaks for its text: another feed may carry the
item with a shorter summary, which is not an edit. Text is compared folded (`textfold`), so
changes of case or white space are not revisions. Pure: the poll reads what it needs and
records what this returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from monitor import textfold
from monitor.evaluate import MilestoneHit
from monitor.events import ItemRevised

# An item's text recorded at most this many times after its discovery: a feed that puts a
# comment count or a "3 minutes ago" in its summaries would otherwise grow the log each poll.
MAX_REVISIONS = 20


class Text(Protocol):
    """What a revision takes of a parsed entry (monitor.entries.Entry has it)."""

    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def published_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class LastText:
    """The text the log holds for an item: its discovery's, or its latest revision's."""

    title: str
    summary: str
    publisher: str | None  # as the discovery named it
    revisions: int  # ItemRevised recorded so far
    seen: frozenset[str] = frozenset()  # text_key of every text recorded for the item


def last_text(history: Iterable[tuple[str, Mapping[str, Any]]]) -> LastText | None:
    """Fold an item stream's events (type, data), in log order; None without a discovery."""
    last: LastText | None = None
    for kind, data in history:
        title, summary = str(data.get("title", "")), str(data.get("summary", ""))
        key = text_key(title, summary)
        if kind == "ItemDiscovered":
            last = LastText(title, summary, data.get("publisher"), 0, frozenset([key]))
        elif kind == "ItemRevised" and last is not None:
            count = last.revisions + 1
            last = LastText(title, summary, last.publisher, count, last.seen | {key})
    return last


def text_key(title: str, summary: str) -> str:
    """What two texts share when they are the same text for a revision's purpose."""
    folded = textfold.normalize(title) + "\n" + textfold.normalize(summary)
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()[:32]


def revised(feed_id: str, item_id: str, entry: Text, last: LastText) -> ItemRevised | None:
    """The revision `entry` makes of the item, or None: a text the item had before (a feed
    flipping between two versions records each once), or no revision left."""
    if last.revisions >= MAX_REVISIONS:
        return None
    key = text_key(entry.title, entry.summary)
    if key == text_key(last.title, last.summary) or key in last.seen:
        return None
    return ItemRevised(
        item_id=item_id,
        feed_id=feed_id,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        published_at=entry.published_at,
        publisher=last.publisher,
        previous_title=last.title,
        revision=last.revisions + 1,
    )


def dedupe_key(revision: ItemRevised) -> str:
    """One revision per distinct text, also when two writers decide it at once."""
    return f"revised:{revision.item_id}:{text_key(revision.title, revision.summary)}"


def match_keys(milestone_id: str, item_id: str) -> tuple[str, ...]:
    """The dedupe keys an item's evidence for a milestone may carry: its discovery's match, and
    a revision's match of either kind (`match_key`)."""
    return (
        f"match:{milestone_id}:{item_id}",
        match_key(milestone_id, item_id, "progress"),
        match_key(milestone_id, item_id, "setback"),
    )


def match_key(milestone_id: str, item_id: str, kind: str) -> str:
    return f"match:{milestone_id}:{item_id}:{kind}"


def fresh(
    verdicts: Sequence[MilestoneHit], matched: Collection[tuple[str, str]]
) -> list[MilestoneHit]:
    """The verdicts on a revised item that are new evidence: not a (milestone, kind) the item
    already gave."""
    return [v for v in verdicts if (v.milestone_id, v.kind) not in matched]
