"""Milestone rules to explained matches: the prefiltered matcher and the reference check (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.prefilter import Prefilter, first_hits
from monitor.rules import Explained, Match, Rule, RuleSpec, compile_rule, explain, locate
from monitor.terms import Term, first_regex, plain_pattern
from monitor.textfold import MappedText


def _shared(rules: Sequence[Rule]) -> list[Rule]:
    """The rules with equal parts made one object, so a document's lookups can be keyed by id."""
    parts: dict[tuple[Term, ...], tuple[Term, ...]] = {}

    def one(part: tuple[Term, ...]) -> tuple[Term, ...]:
        return parts.setdefault(part, part)

    return [Rule(r.key, tuple(map(one, r.groups)), one(r.any), one(r.none), r.fields)
            for r in rules]  # fmt: skip


class Matcher:
    """All rules compiled once; literal terms share one Aho-Corasick automaton as a prefilter."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = sorted(_shared(rules), key=lambda r: r.key)
        self._positions = {r.key: i for i, r in enumerate(self._rules)}
        self._prefilter = Prefilter(self._rules)

    def match(self, doc: Mapping[str, str]) -> list[Match]:
        """Every rule that matches `doc` (keys title, summary, content; missing = ""), by rule key."""
        prefilter = self._prefilter
        texts, occurrences = prefilter.scan(doc)
        literals: set[str] = set().union(*occurrences.values())
        first = first_hits(texts, occurrences)
        matches, rules, all_vetoes = [], self._rules, prefilter.vetoes
        hits: Explained = {}
        for i in prefilter.candidates(literals):
            vetoes = all_vetoes[i]
            found = locate(rules[i], first, vetoes is None or not vetoes.isdisjoint(literals))
            if found is not None:
                matches.append(explain(rules[i].key, found, texts, hits))
        return matches

    def match_one(self, rule: str, doc: Mapping[str, str]) -> Match | None:
        """The match of one rule (KeyError if unknown), checked without the prefilter."""
        texts, occurrences = self._prefilter.scan(doc)
        found = locate(self._rules[self._positions[rule]], first_hits(texts, occurrences))
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

    def first(
        terms: tuple[Term, ...], fields: tuple[str, ...]
    ) -> tuple[Term, str, int, int] | None:
        for name in fields:
            spans = [
                (first_regex(t.regex or plain_pattern(t), texts[name].text), t) for t in terms
            ]
            hits = [(span[0], n, t, span) for n, (span, t) in enumerate(spans) if span]
            if hits:
                _, _, term, (start, end) = min(hits)
                return term, name, start, end
        return None

    found = locate(compiled, first)
    return None if found is None else explain(key, found, texts, {})
