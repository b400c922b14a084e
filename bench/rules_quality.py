"""Precision and recall of the shipped feeds.toml rules on the labelled set (tests/fixtures/labelled).

The labelled set is hand-written items mirroring real headlines plus every item of the real feeds
in tests/fixtures/feeds. A verdict is (milestone id, kind); per item, a verdict both expected and
given is a true positive, given only a false positive, expected only a false negative.
tests/test_shipped_rules.py loads the set through the same functions.

    .venv/bin/python -m bench.rules_quality
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.config import load_config
from monitor.evaluate import compile_rules, doc_of, evaluate
from monitor.match import Matcher
from monitor.parse import parse_feed

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "feeds.toml"
LABELLED = ROOT / "tests" / "fixtures" / "labelled"
FEEDS = ROOT / "tests" / "fixtures" / "feeds"
CORPUS_FILE = "corpus.toml"
KINDS = ("progress", "setback")

Verdict = tuple[str, str]  # (milestone id, kind)


@dataclass(frozen=True, slots=True)
class Labelled:
    """One labelled item: its text, the verdicts the rules must give, and where it came from."""

    id: str
    title: str
    summary: str
    expect: frozenset[Verdict]
    category: str
    source: str  # the labelled file, or the corpus feed's path
    lang: str | None = None
    content: str = ""
    strict: bool = True  # False: genuinely ambiguous, counted in the report only
    note: str = ""


def parse_verdict(text: str) -> Verdict:
    """`"training-start:progress"` → `("training-start", "progress")`."""
    milestone, _, kind = text.partition(":")
    if not milestone or kind not in KINDS:
        raise ValueError(f"label {text!r}: write milestone-id:progress or milestone-id:setback")
    return milestone, kind


def _expect(raw: Mapping[str, Any], where: str) -> frozenset[Verdict]:
    if "expect" not in raw:
        raise ValueError(f"{where}: every label needs `expect` ([] for none)")
    return frozenset(parse_verdict(v) for v in raw["expect"])


def load_written(path: Path) -> list[Labelled]:
    """The `[[items]]` of one hand-written labelled file."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    items = []
    for raw in data.get("items", []):
        where = f"{path.name}: {raw.get('id', '?')}"
        items.append(
            Labelled(
                id=raw["id"],
                title=raw["title"],
                summary=raw.get("summary", ""),
                content=raw.get("content", ""),
                expect=_expect(raw, where),
                category=raw["category"],
                source=path.name,
                lang=raw.get("lang"),
                strict=raw.get("strict", True),
                note=raw.get("note", ""),
            )
        )
    return items


def load_corpus(path: Path, feeds: Path) -> list[Labelled]:
    """Every entry of every feed the corpus file lists; silent unless an override says otherwise."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    now: datetime = data["now"]
    items = []
    for feed in data["feeds"]:
        overrides = {o["title"]: o for o in feed.get("items", [])}
        parsed = parse_feed((feeds / feed["path"]).read_bytes(), now=now)
        stem = Path(feed["path"]).stem
        for index, entry in enumerate(parsed.entries):
            override = overrides.get(entry.title, {})
            items.append(
                Labelled(
                    id=f"corpus/{stem}/{index:03d}",
                    title=entry.title,
                    summary=entry.summary,
                    content=entry.content,
                    expect=_expect(override, feed["path"]) if override else frozenset(),
                    category="corpus",
                    source=feed["path"],
                    lang=entry.language,
                    strict=override.get("strict", True),
                    note=override.get("note", ""),
                )
            )
    return items


def load_labelled(folder: Path = LABELLED, feeds: Path = FEEDS) -> list[Labelled]:
    """The whole labelled set: hand-written files in name order, then the corpus items."""
    written = [
        item
        for path in sorted(folder.glob("*.toml"))
        if path.name != CORPUS_FILE
        for item in load_written(path)
    ]
    return written + load_corpus(folder / CORPUS_FILE, feeds)


def verdicts(matcher: Matcher, item: Labelled) -> frozenset[Verdict]:
    """What the rules say about one item."""
    doc = doc_of(item.title, item.summary, item.content)
    return frozenset((hit.milestone_id, hit.kind) for hit in evaluate(matcher, doc))


@dataclass(slots=True)
class Tally:
    """True positives, false positives and false negatives of one slice of the set."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    wrong: list[str] = field(default_factory=list)  # ids of items with a false verdict

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


OVERALL = "overall"


def score(
    results: Iterable[tuple[Labelled, frozenset[Verdict]]], milestones: Sequence[str]
) -> dict[str, Tally]:
    """A tally per milestone and one overall, from (item, verdicts given) pairs."""
    tallies = {name: Tally() for name in (*milestones, OVERALL)}
    for item, given in results:
        for milestone, kind in item.expect | given:
            tp = (milestone, kind) in item.expect and (milestone, kind) in given
            for name in (milestone, OVERALL):
                tally = tallies.setdefault(name, Tally())
                if tp:
                    tally.tp += 1
                elif (milestone, kind) in given:
                    tally.fp += 1
                else:
                    tally.fn += 1
                if not tp and item.id not in tally.wrong:
                    tally.wrong.append(item.id)
    return tallies


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_table(title: str, tallies: Mapping[str, Tally]) -> None:
    print(
        f"{title:<10} {'milestone':<22} {'tp':>5} {'fp':>5} {'fn':>5} {'precision':>10} {'recall':>8}"
    )
    for name, t in tallies.items():
        print(
            f"{'':<10} {name:<22} {t.tp:>5} {t.fp:>5} {t.fn:>5} "
            f"{_ratio(t.precision):>10} {_ratio(t.recall):>8}"
        )


def run() -> None:
    config = load_config(CONFIG, {})
    matcher = compile_rules(config)
    names = [m.id for m in config.milestones]
    items = load_labelled()
    results = [(item, verdicts(matcher, item)) for item in items]
    written = sum(1 for i in items if i.category != "corpus")
    strict = [r for r in results if r[0].strict]
    print(
        f"labelled items {len(items)}: hand-written {written}, real corpus {len(items) - written}; "
        f"strict {len(strict)}, ambiguous {len(items) - len(strict)}"
    )
    print(f"positive verdicts expected {sum(len(i.expect) for i in items)}")
    _print_table("whole set", score(results, names))
    _print_table("strict", score(strict, names))
    wrong = score(results, names)[OVERALL].wrong
    print(f"items with a wrong verdict ({len(wrong)}): {', '.join(wrong) or 'none'}")


if __name__ == "__main__":
    run()
