"""Milestone rules to explained matches: rule checks, an Aho-Corasick prefilter (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick

from monitor.terms import (
    Term,
    TermError,
    check_term,
    compile_terms,
    first_at,
    first_regex,
    latin,
    plain_pattern,
)
from monitor.textfold import MappedText

# TermError and check_term live in monitor.terms; config reads them from here, beside the rules.
__all__ = [
    "FIELDS", "Hit", "Match", "Matcher", "RuleSpec", "TermError",
    "check_term", "compile_matcher", "match_plain",
]  # fmt: skip

FIELDS = ("title", "summary", "content")


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as configured: every `all` group, one of `any` (if given), none of `none`."""

    all: tuple[tuple[str, ...], ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    fields: tuple[str, ...] = FIELDS


@dataclass(frozen=True, slots=True)
class Hit:
    """Why one part of a rule matched: the term, and where in the original field text."""

    group: int | None  # index into `all`, or None for the `any` part
    term: str
    field: str
    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "term": self.term, "field": self.field,
                "start": self.start, "end": self.end, "text": self.text}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that matched a document, with one hit per `all` group and the `any` part."""

    rule: str
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class _Rule:
    key: str
    groups: tuple[tuple[Term, ...], ...]
    any: tuple[Term, ...]
    none: tuple[Term, ...]
    fields: tuple[str, ...]


def _compile(key: str, spec: RuleSpec, aliases: Mapping[str, Sequence[str]]) -> _Rule:
    unknown = [f for f in spec.fields if f not in FIELDS]
    problem = (f"unknown field {unknown[0]!r}" if unknown
               else "no fields to search" if not spec.fields
               else "needs a term in `all` or `any`" if not (spec.all or spec.any)
               else "an `all` group is empty" if not all(spec.all) else None)  # fmt: skip
    if problem:
        raise TermError(None, problem, rule=key)
    try:
        groups = tuple(compile_terms(g, aliases) for g in spec.all)
        return _Rule(key, groups, compile_terms(spec.any, aliases),
                     compile_terms(spec.none, aliases), tuple(spec.fields))  # fmt: skip
    except TermError as exc:
        raise TermError(exc.term, exc.reason, rule=key) from None


# A strategy gives the leftmost hit (term, field, start, end) of any of the terms, in the
# first field (in rule order) that has one; offsets are in the normalized field text.
_First = Callable[[tuple[Term, ...], tuple[str, ...]], "tuple[Term, str, int, int] | None"]
_Found = list[tuple[int | None, Term, str, int, int]]


def _evaluate(rule: _Rule, first: _First, vetoes: bool = True) -> _Found | None:
    found: _Found = []
    fields = rule.fields
    for index, group in enumerate(rule.groups):
        hit = first(group, fields)
        if hit is None:
            return None
        found.append((index, *hit))
    if rule.any:
        hit = first(rule.any, fields)
        if hit is None:
            return None
        found.append((None, *hit))
    if vetoes and rule.none and first(rule.none, fields) is not None:
        return None
    return found


_Hits = dict[tuple[int | None, str, str, int, int], Hit]


def _explain(key: str, found: _Found, texts: dict[str, MappedText], seen: _Hits) -> Match:
    # Rules sharing a part share its hit: `seen` maps each back to the original text only once.
    hits = []
    for group, term, name, start, end in found:
        where = (group, term.source, name, start, end)
        hit = seen.get(where)
        if hit is None:
            mapped = texts[name]
            first, last = mapped.original_span(start, end)
            text = mapped.original[first:last]
            hit = seen[where] = Hit(group, term.source, name, first, last, text)
        hits.append(hit)
    return Match(key, tuple(hits))


@dataclass(frozen=True, slots=True)
class _Index:
    """Which rules a set of literal hits can satisfy."""

    literals: set[str]  # every literal term: the automaton's words
    anchors: dict[str, frozenset[int]]  # literal -> rules whose rarest part it can satisfy
    required: list[tuple[frozenset[str], ...]]  # rule -> literals of each part but the rarest
    vetoes: list[frozenset[str] | None]  # rule -> literals of its vetoes; None: has a regex veto
    always: list[int]  # rules with a regex in every part: no literal can rule them out


def _literal_parts(rule: _Rule) -> list[tuple[Term, ...]]:
    parts = [*rule.groups, *((rule.any,) if rule.any else ())]
    return [p for p in parts if all(t.regex is None for t in p)]


def _build_index(rules: list[_Rule]) -> _Index:
    uses: dict[str, int] = {}
    for rule in rules:
        for term in (t for part in _literal_parts(rule) for t in part):
            uses[term.literal] = uses.get(term.literal, 0) + 1
    anchors: dict[str, set[int]] = {}
    every = (t for r in rules for part in (*r.groups, r.any, r.none) for t in part)
    index = _Index({t.literal for t in every if t.regex is None}, {}, [], [], [])
    for i, rule in enumerate(rules):
        parts = [frozenset(t.literal for t in part) for part in _literal_parts(rule)]
        if parts:  # the part whose literals are rarest decides whether the rule is looked at
            rarest = min(parts, key=lambda p: sum(uses[lit] for lit in p))
            for literal in rarest:
                anchors.setdefault(literal, set()).add(i)
            parts.remove(rarest)
        else:
            index.always.append(i)
        index.required.append(tuple(parts))
        regex_veto = any(t.regex is not None for t in rule.none)
        index.vetoes.append(None if regex_veto else frozenset(t.literal for t in rule.none))
    index.anchors.update((lit, frozenset(rules)) for lit, rules in anchors.items())
    return index


def _shared(rules: Sequence[_Rule]) -> list[_Rule]:
    """The rules with equal parts made one object, so a document's lookups can be keyed by id."""
    parts: dict[tuple[Term, ...], tuple[Term, ...]] = {}

    def one(part: tuple[Term, ...]) -> tuple[Term, ...]:
        return parts.setdefault(part, part)

    return [_Rule(r.key, tuple(map(one, r.groups)), one(r.any), one(r.none), r.fields)
            for r in rules]  # fmt: skip


class Matcher:
    """All rules compiled once; literal terms share one Aho-Corasick automaton as a prefilter."""

    def __init__(self, rules: Sequence[_Rule]) -> None:
        self._rules = sorted(_shared(rules), key=lambda r: r.key)
        self._positions = {r.key: i for i, r in enumerate(self._rules)}
        self._fields = tuple(f for f in FIELDS if any(f in r.fields for r in self._rules))
        self._index = _build_index(self._rules)
        self._automaton: Any = None
        if self._index.literals:
            self._automaton = ahocorasick.Automaton()
            for literal in self._index.literals:
                self._automaton.add_word(literal, literal)
            self._automaton.make_automaton()

    def _scan(
        self, doc: Mapping[str, str]
    ) -> tuple[dict[str, MappedText], dict[str, dict[str, list[int]]]]:
        texts: dict[str, MappedText] = {}
        occurrences: dict[str, dict[str, list[int]]] = {}
        automaton = self._automaton
        for name in self._fields:
            texts[name] = mapped = MappedText(doc.get(name) or "")
            text = mapped.text
            found: dict[str, list[int]] = {}
            occurrences[name] = found
            if automaton is not None and text:
                for end, literal in automaton.iter(text):
                    if literal in found:
                        found[literal].append(end)
                    else:
                        found[literal] = [end]
        return texts, occurrences

    def _candidates(self, literals: set[str]) -> list[int]:
        index, anchors = self._index, self._index.anchors
        touched: set[int] = set().union(*[anchors[lit] for lit in literals if lit in anchors])
        required, absent = index.required, literals.isdisjoint
        chosen = [i for i in touched if not any(map(absent, required[i]))]
        return sorted(chosen + index.always) if index.always else sorted(chosen)

    def match(self, doc: Mapping[str, str]) -> list[Match]:
        """Every rule that matches `doc` (keys title, summary, content; missing = ""), by rule key."""
        texts, occurrences = self._scan(doc)
        literals: set[str] = set().union(*occurrences.values())
        first = _automaton_first(texts, occurrences)
        matches, rules, all_vetoes = [], self._rules, self._index.vetoes
        hits: _Hits = {}
        for i in self._candidates(literals):
            vetoes = all_vetoes[i]
            found = _evaluate(rules[i], first, vetoes is None or not vetoes.isdisjoint(literals))
            if found is not None:
                matches.append(_explain(rules[i].key, found, texts, hits))
        return matches

    def match_one(self, rule: str, doc: Mapping[str, str]) -> Match | None:
        """The match of one rule (KeyError if unknown), checked without the prefilter."""
        texts, occurrences = self._scan(doc)
        found = _evaluate(self._rules[self._positions[rule]], _automaton_first(texts, occurrences))
        return None if found is None else _explain(rule, found, texts, {})


def _automaton_first(
    texts: dict[str, MappedText], occurrences: dict[str, dict[str, list[int]]]
) -> _First:
    letters = latin()[0]
    # Rules share parts (an alias, a company's names): each part is looked up once per document.
    seen: dict[tuple[int, tuple[str, ...]], tuple[Term, str, int, int] | None] = {}

    def first(
        terms: tuple[Term, ...], fields: tuple[str, ...]
    ) -> tuple[Term, str, int, int] | None:
        key = (id(terms), fields)
        if key in seen:
            return seen[key]
        best = None
        for name in fields:
            text, found = texts[name].text, occurrences[name]
            for term in terms:
                if term.regex is not None:
                    span = first_regex(term.regex, text)
                elif term.literal in found:
                    span = first_at(term, text, found[term.literal], letters)
                else:
                    continue
                if span is not None and (best is None or span[0] < best[2]):
                    best = (term, name, *span)
            if best is not None:
                break
        seen[key] = best
        return best

    return first


def compile_matcher(rules: Mapping[str, RuleSpec], aliases: Mapping[str, Sequence[str]]) -> Matcher:
    """Compile every rule (TermError names the rule and the term at fault)."""
    return Matcher([_compile(key, spec, aliases) for key, spec in rules.items()])


def match_plain(
    rule: RuleSpec, aliases: Mapping[str, Sequence[str]], doc: Mapping[str, str], *, key: str = ""
) -> Match | None:
    """The reference check of one rule: boundaries as regex look-arounds, no automaton."""
    compiled = _compile(key, rule, aliases)
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

    found = _evaluate(compiled, first)
    return None if found is None else _explain(key, found, texts, {})
