"""Milestone rules to explained matches: the prefiltered matcher and the reference check (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.prefilter import Prefilter, first_hits
from monitor.rules import (
    Explained,
    FirstHit,
    Match,
    Rule,
    RuleSpec,
    TimedOut,
    compile_rule,
    explain,
    locate,
)
from monitor.terms import Term, first_regex, plain_pattern
from monitor.textfold import MappedText


def _shared(rules: Sequence[Rule]) -> list[Rule]:
    """The rules with equal parts made one object, so a document's lookups can be keyed by id."""
    parts: dict[tuple[Term, ...], tuple[Term, ...]] = {}

    def one(part: tuple[Term, ...]) -> tuple[Term, ...]:
        return parts.setdefault(part, part)

    return [Rule(r.key, tuple(map(one, r.groups)), one(r.any), one(r.none), r.fields)
            for r in rules]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the rules found in one document, and the regex searches that ran out of time."""

    matches: list[Match]
    timed_out: tuple[TimedOut, ...] = ()


def _blame(rule: Rule, first: FirstHit, vetoes: bool, timed_out: dict[Term, str]) -> list[TimedOut]:
    """The timed-out terms among the parts `rule` looked at (`first` answers from its cache)."""
    asked: list[tuple[Term, ...]] = []

    def recording(
        terms: tuple[Term, ...], fields: tuple[str, ...]
    ) -> tuple[Term, str, int, int] | None:
        asked.append(terms)
        return first(terms, fields)

    locate(rule, recording, vetoes)
    terms = dict.fromkeys(t for part in asked for t in part if t in timed_out)
    return [TimedOut(rule.key, t.source, timed_out[t]) for t in terms]


@dataclass(frozen=True, slots=True)
class Veto:
    """A rule's `none` term that kept it from matching: where, and the text it found."""

    rule: str
    term: str
    field: str
    text: str


class Matcher:
    """All rules compiled once; literal terms share one Aho-Corasick automaton as a prefilter."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = sorted(_shared(rules), key=lambda r: r.key)
        self._positions = {r.key: i for i, r in enumerate(self._rules)}
        self._prefilter = Prefilter(self._rules)

    def match(self, doc: Mapping[str, str]) -> list[Match]:
        """Every rule that matches `doc` (keys title, summary, content; missing = ""), by rule key."""
        return self.outcome(doc).matches

    def outcome(self, doc: Mapping[str, str]) -> Outcome:
        """The matches of `doc`, and for each rule the regex terms it looked for in vain because
        their search ran out of time (taken as no match in `doc`)."""
        prefilter = self._prefilter
        texts, occurrences = prefilter.scan(doc)
        literals: set[str] = set().union(*occurrences.values())
        timed_out: dict[Term, str] = {}
        first = first_hits(texts, occurrences, timed_out)
        matches, rules, all_vetoes = [], self._rules, prefilter.vetoes
        hits: Explained = {}
        checked = [(i, all_vetoes[i]) for i in prefilter.candidates(literals)]
        for i, vetoes in checked:
            found = locate(rules[i], first, vetoes is None or not vetoes.isdisjoint(literals))
            if found is not None:
                matches.append(explain(rules[i].key, found, texts, hits))
        if not timed_out:  # the usual case
            return Outcome(matches)
        blamed = [
            late
            for i, vetoes in checked
            for late in _blame(
                rules[i], first, vetoes is None or not vetoes.isdisjoint(literals), timed_out
            )
        ]
        return Outcome(matches, tuple(blamed))

    def vetoed(self, doc: Mapping[str, str]) -> list[Veto]:
        """The rules `doc` would match but for one of their `none` terms, and that term's
        first hit: what `monitor explain` says of a near miss."""
        texts, occurrences = self._prefilter.scan(doc)
        first = first_hits(texts, occurrences, {})
        out = []
        for rule in self._rules:
            if not rule.none or locate(rule, first, vetoes=False) is None:
                continue
            hit = first(rule.none, rule.fields)
            if hit is not None:
                term, field, start, end = hit
                begin, stop = texts[field].original_span(start, end)
                out.append(Veto(rule.key, term.source, field, texts[field].original[begin:stop]))
        return out

    def match_one(self, rule: str, doc: Mapping[str, str]) -> Match | None:
        """The match of one rule (KeyError if unknown), checked without the prefilter."""
        texts, occurrences = self._prefilter.scan(doc)
        found = locate(self._rules[self._positions[rule]], first_hits(texts, occurrences, {}))
        return None if found is None else explain(rule, found, texts, {})


def compile_matcher(rules: Mapping[str, RuleSpec], aliases: Mapping[str, Sequence[str]]) -> Matcher:
    """Compile every rule (TermError names the rule and the term at fault)."""
    return Matcher([compile_rule(key, spec, aliases) for key, spec in rules.items()])


def match_plain(
    rule: RuleSpec, aliases: Mapping[str, Sequence[str]], doc: Mapping[str, str], *, key: str = ""
) -> Match | None:
    """The reference check of one rule: boundaries as regex look-arounds, no automaton."""
    compiled = compile_rule(key, rule, aliases)
    texts = {name: MappedText(doc.get(name) or "") for name in compiled.fields}
    timed_out: set[Term] = set()  # as in the matcher: no match in this document

    def search(term: Term, text: str) -> tuple[int, int] | None:
        if term.regex is None:
            found = plain_pattern(term).search(text)
            return None if found is None else found.span()
        if term in timed_out:
            return None
        try:
            return first_regex(term.regex, text)
        except TimeoutError:
            timed_out.add(term)
            return None

    def first(
        terms: tuple[Term, ...], fields: tuple[str, ...]
    ) -> tuple[Term, str, int, int] | None:
        for name in fields:
            spans = [(search(t, texts[name].text), t) for t in terms]
            hits = [(span[0], n, t, span) for n, (span, t) in enumerate(spans) if span]
            if hits:
                _, _, term, (start, end) = min(hits)
                return term, name, start, end
        return None

    found = locate(compiled, first)
    return None if found is None else explain(key, found, texts, {})
