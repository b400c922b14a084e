"""The shipped feeds.toml: its sources, milestones and rules, judged on the labelled set."""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bench.rules_quality import (
    CONFIG,
    CORPUS_FILE,
    FEEDS,
    LABELLED,
    OVERALL,
    Labelled,
    load_labelled,
    parse_verdict,
    score,
    verdicts,
)
from monitor.config import Config, load_config
from monitor.errors import ConfigError, ParseError
from monitor.evaluate import compile_rules
from monitor.match import Matcher
from monitor.parse import parse_feed
from monitor.terms import first_regex, parse_term
from monitor.textfold import normalize

ITEMS = load_labelled()
STRICT = [item for item in ITEMS if item.strict]
JV_MILESTONES = (
    "jv-established",
    "nedo-award",
    "training-start",
    "first-model-release",
    "stage-gate-funding",
)
MILESTONES = (*JV_MILESTONES, "softbank-datacenter")
NEAR_MISSES = (
    "hydrogen",
    "offshore-wind",
    "geniac",
    "softbank-earnings",
    "hawks",
    "expo-2027",
    "rugby-2027",
    "nec-foundation-model",
)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(CONFIG, {})


@pytest.fixture(scope="module")
def matcher(config: Config) -> Matcher:
    return compile_rules(config)


# --- the labelled set ------------------------------------------------------------------------


@pytest.mark.parametrize("item", STRICT, ids=[item.id for item in STRICT])
def test_labelled_item_gets_exactly_its_expected_verdicts(matcher: Matcher, item: Labelled) -> None:
    assert sorted(verdicts(matcher, item)) == sorted(item.expect), item.note


def test_strict_table_has_precision_and_recall_of_one(matcher: Matcher) -> None:
    tallies = score(((item, verdicts(matcher, item)) for item in STRICT), MILESTONES)
    for name in (*MILESTONES, OVERALL):
        assert (name, tallies[name].precision, tallies[name].recall) == (name, 1.0, 1.0)


def test_whole_set_is_scored_with_the_ambiguous_items_counted(matcher: Matcher) -> None:
    ambiguous = [item for item in ITEMS if not item.strict]
    overall = score(((item, verdicts(matcher, item)) for item in ITEMS), MILESTONES)[OVERALL]
    assert ambiguous, "the ambiguous items keep the report honest"
    assert overall.tp == sum(len(item.expect) for item in STRICT) + sum(
        len(item.expect & verdicts(matcher, item)) for item in ambiguous
    )
    assert set(overall.wrong) <= {item.id for item in ambiguous}


def test_score_counts_true_and_false_verdicts_per_milestone() -> None:
    item = Labelled(
        id="x",
        title="",
        summary="",
        expect=frozenset({("a", "progress"), ("b", "setback")}),
        category="positive",
        source="test",
    )
    given = frozenset({("a", "progress"), ("b", "progress")})
    tallies = score([(item, given)], ["a", "b"])
    assert (tallies["a"].tp, tallies["a"].fp, tallies["a"].fn) == (1, 0, 0)
    assert (tallies["b"].tp, tallies["b"].fp, tallies["b"].fn) == (0, 1, 1)
    assert (tallies[OVERALL].precision, tallies[OVERALL].recall) == (0.5, 0.5)
    assert tallies["b"].wrong == ["x"]


def test_strict_table_covers_every_near_miss_the_issue_names() -> None:
    silent = {item.category.removeprefix("near-miss/") for item in STRICT if not item.expect}
    assert [kind for kind in NEAR_MISSES if kind not in silent] == []


@pytest.mark.parametrize("kind", ["progress", "setback"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_strict_table_has_each_milestone_in_each_language(lang: str, kind: str) -> None:
    covered = {m for item in STRICT if item.lang == lang for m, k in item.expect if k == kind}
    assert [m for m in MILESTONES if m not in covered] == []


def test_labelled_set_has_at_least_sixty_written_items_and_every_corpus_item() -> None:
    written = [item for item in ITEMS if item.category != "corpus"]
    assert len(written) >= 60
    assert len(ITEMS) - len(written) > 1000


def test_labelled_ids_are_unique() -> None:
    ids = [item.id for item in ITEMS]
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


def test_labels_name_only_configured_milestones(config: Config) -> None:
    known = {m.id for m in config.milestones}
    assert sorted({m for item in ITEMS for m, _ in item.expect} - known) == []


@pytest.mark.parametrize("text", ["training-start", "training-start:done", ":progress"])
def test_a_malformed_label_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="milestone-id:progress"):
        parse_verdict(text)


# --- the real corpus -------------------------------------------------------------------------


def _parseable_fixtures() -> list[str]:
    found, now = [], _corpus_now()
    for path in sorted(FEEDS.rglob("*")):
        if path.is_dir() or path.suffix == ".md":
            continue
        try:
            parsed = parse_feed(path.read_bytes(), now=now)
        except ParseError:
            continue
        if parsed.entries:
            found.append(path.relative_to(FEEDS).as_posix())
    return found


def _corpus_now() -> datetime:
    now: datetime = tomllib.loads((LABELLED / CORPUS_FILE).read_text(encoding="utf-8"))["now"]
    return now


def test_every_parseable_corpus_feed_is_labelled() -> None:
    listed = {item.source for item in ITEMS if item.category == "corpus"}
    assert [path for path in _parseable_fixtures() if path not in listed] == []


def test_no_milestone_fires_on_real_corpus_items_unless_labelled(matcher: Matcher) -> None:
    corpus = [item for item in ITEMS if item.category == "corpus"]
    fired = {item.id for item in corpus if verdicts(matcher, item)}
    assert fired == {item.id for item in corpus if item.expect}


def test_shipped_regex_terms_find_with_regex_what_re_finds(config: Config) -> None:
    """The `regex` module runs the terms; on every labelled text it finds `re`'s spans."""
    rules = [m.match for m in config.milestones] + [s for m in config.milestones for s in m.setback]
    written = {t for r in rules for t in (*r.any, *r.none, *(t for g in r.all for t in g))}
    written |= {t for terms in config.aliases.values() for t in terms}
    terms = [parse_term(t) for t in sorted(written) if t.startswith("/")]
    texts = {normalize(x) for item in ITEMS for x in (item.title, item.summary, item.content)}
    differ = []
    for term in terms:
        assert term.regex is not None
        plain = re.compile(term.source[1:-1], re.IGNORECASE)
        for text in texts:
            found = plain.search(text)
            if first_regex(term.regex, text) != (None if found is None else found.span()):
                differ.append((term.source, text))
    assert len(terms) > 20
    assert differ == []


def test_the_real_noetra_release_in_nec_press_stays_silent(matcher: Matcher) -> None:
    (item,) = [i for i in ITEMS if i.category == "corpus" and "Noetra" in i.summary]
    assert item.source == "ja_corp/nec_press_2026-08.xml"
    assert verdicts(matcher, item) == frozenset()


# --- milestones as the issue states them -----------------------------------------------------

STATE = [
    # id, baseline status, baseline since, expected_by
    ("jv-established", "confirmed", date(2026, 4, 12), None),
    ("nedo-award", "confirmed", date(2026, 6, 30), None),
    ("training-start", None, None, date(2027, 3, 31)),
    ("first-model-release", None, None, date(2027, 3, 31)),
    ("stage-gate-funding", None, None, date(2027, 4, 30)),
    ("softbank-datacenter", None, None, date(2027, 3, 31)),
]


@pytest.mark.parametrize(("milestone", "status", "since", "expected_by"), STATE)
def test_milestone_baseline_deadline_notify_and_setbacks(
    config: Config, milestone: str, status: str | None, since: date | None, expected_by: date | None
) -> None:
    m = config.milestone(milestone)
    baseline = None if m.baseline is None else (m.baseline.status, m.baseline.since)
    assert baseline == (None if status is None else (status, since))
    assert m.expected_by == expected_by
    assert m.notify == ("team", "hook")
    assert m.setback, "every milestone has setback rules"
    if m.baseline is not None:
        assert m.baseline.source.startswith("https://") and m.baseline.reason


def test_shipped_milestones_are_exactly_the_issue_list(config: Config) -> None:
    assert [m.id for m in config.milestones] == list(MILESTONES)


@pytest.mark.parametrize("milestone", JV_MILESTONES)
def test_jv_rules_know_both_names_of_the_jv(config: Config, milestone: str) -> None:
    m = config.milestone(milestone)
    assert {"Noetra", "ノエトラ", "日本AI基盤モデル開発"} <= set(config.aliases["noetra"])
    for rule in (m.match, *m.setback):
        assert "@noetra" in rule.all[0]


@pytest.mark.parametrize(
    ("milestone", "authorities"),
    [
        ("nedo-award", {"nedo.go.jp", "meti.go.jp"}),
        ("stage-gate-funding", {"nedo.go.jp", "meti.go.jp"}),
        ("training-start", {"nedo.go.jp", "softbank.jp", "nec.com", "sony.com", "global.honda"}),
        ("softbank-datacenter", {"softbank.jp", "group.softbank"}),
    ],
)
def test_authoritative_publishers_per_milestone(
    config: Config, milestone: str, authorities: set[str]
) -> None:
    assert authorities <= set(config.milestone(milestone).confirm.authoritative)


def test_government_decisions_are_confirmed_only_by_the_government(config: Config) -> None:
    for milestone in ("nedo-award", "stage-gate-funding"):
        assert set(config.milestone(milestone).confirm.authoritative) == {
            "nedo.go.jp",
            "meti.go.jp",
        }


# --- feeds -----------------------------------------------------------------------------------

FEED_HOSTS = [
    ("nhk-science-culture", "news.web.nhk"),
    ("nhk-economy", "news.web.nhk"),
    ("itmedia-aiplus", "rss.itmedia.co.jp"),
    ("japan-times", "www.japantimes.co.jp"),
    ("nikkei-asia", "asia.nikkei.com"),
    ("impress-watch", "www.watch.impress.co.jp"),
    ("nec-press", "jpn.nec.com"),
    ("meti-news", "www.meti.go.jp"),
]


@pytest.mark.parametrize(("feed", "host"), FEED_HOSTS)
def test_shipped_feed_polls_the_documented_source(config: Config, feed: str, host: str) -> None:
    assert urlsplit(config.feed(feed).url).hostname == host


def test_meti_feed_is_watched_for_staleness(config: Config) -> None:
    assert config.feed("meti-news").stale_after is not None


@pytest.mark.parametrize(
    ("query", "locale"),
    [
        ('"Noetra" OR ノエトラ', ("ja", "JP", "JP:ja")),
        ('"Noetra"', ("en-US", "US", "US:en")),
        ('"日本AI基盤モデル開発"', ("ja", "JP", "JP:ja")),
    ],
)
def test_google_news_searches_for_both_names(
    config: Config, query: str, locale: tuple[str, str, str]
) -> None:
    found = [
        parse_qs(urlsplit(f.url).query)
        for f in config.feeds
        if urlsplit(f.url).hostname == "news.google.com"
    ]
    wanted = {"q": [query], "hl": [locale[0]], "gl": [locale[1]], "ceid": [locale[2]]}
    assert wanted in found


def test_google_news_urls_are_percent_encoded(config: Config) -> None:
    for feed in config.feeds:
        if urlsplit(feed.url).hostname == "news.google.com":
            assert feed.url.isascii() and " " not in feed.url and '"' not in feed.url


def test_unverified_nedo_feeds_are_listed_but_not_polled(config: Config) -> None:
    text = CONFIG.read_text(encoding="utf-8")
    assert "UNVERIFIED" in text and "https://www.nedo.go.jp/rss/index.xml" in text
    assert [f.id for f in config.feeds if "nedo.go.jp" in f.url] == []


# --- configuration validation asks the matcher what a valid term is --------------------------

MILESTONE = '[[milestones]]\nid = "m"\ntitle = "M"\n[milestones.match]\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            MILESTONE + 'all = [["Noetra", "/a*/"]]\n',
            "milestones[0].match.all[0][1]: term '/a*/': regular expression matches the empty string",
            id="regex-matching-nothing",
        ),
        pytest.param(
            MILESTONE + 'any = ["aw*rd"]\n',
            "milestones[0].match.any[0]: term 'aw*rd': only a trailing * right after a word is allowed",
            id="star-inside-a-word",
        ),
        pytest.param(
            '[aliases]\nx = ["/(/"]\n' + MILESTONE + 'any = ["@x"]\n',
            "aliases.x[0]: '/(/' is not a valid regular expression: "
            "missing ), unterminated subpattern at position 0",
            id="bad-regex-in-alias-reported-once-at-the-alias",
        ),
    ],
)
def test_config_reports_terms_the_matcher_rejects(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.problems == [f"{path}: {expected}"]
