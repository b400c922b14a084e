"""Milestone rules to explained matches: terms, aliases, an Aho-Corasick prefilter (pure)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import ahocorasick

from monitor.identity import MappedText, normalize

FIELDS = ("title", "summary", "content")


class TermError(ValueError):
    """A term or rule cannot be compiled: bad regex, unknown alias, empty term or group."""

    def __init__(self, term: str | None, reason: str, *, rule: str | None = None) -> None:
        self.term, self.reason, self.rule = term, reason, rule
        where = f"rule {rule!r}: " if rule is not None else ""
        what = f"term {term!r}: " if term is not None else ""
        super().__init__(f"{where}{what}{reason}")


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


@cache
def _latin() -> tuple[frozenset[str], str]:
    """Latin letters and ASCII digits, as a set and as a regex class body."""
    chars = [
        chr(cp)
        for cp in range(0x20000)
        if chr(cp).isalpha() and "LATIN" in unicodedata.name(chr(cp), "")
    ]
    chars += list("0123456789")
    return frozenset(chars), "".join(f"\\U{ord(c):08x}" for c in sorted(chars))


@dataclass(frozen=True, slots=True)
class _Term:
    source: str  # as written, for explanations
    literal: str = ""  # normalized, without the trailing "*"
    regex: re.Pattern[str] | None = None
    left: bool = False  # a Latin letter or digit may not precede the match
    right: bool = False  # nor follow it
    wildcard: bool = False  # the match runs on over following Latin letters and digits


def _parse(term: str) -> _Term:
    stripped = term.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == "/":
        try:
            pattern = re.compile(stripped[1:-1], re.IGNORECASE)
        except re.error as exc:
            raise TermError(term, f"bad regular expression ({exc})") from None
        if pattern.fullmatch(""):
            raise TermError(term, "regular expression matches the empty string")
        return _Term(term, regex=pattern)
    literal = normalize(term)
    wildcard = literal.endswith("*")
    literal = literal.removesuffix("*")
    if not literal:
        raise TermError(term, "empty term")
    if "*" in literal or literal != literal.rstrip():
        raise TermError(term, "only a trailing * right after a word is allowed")
    latin = _latin()[0]
    # A term with any non-Latin letter (kanji, kana, ...) matches as a plain substring.
    edges = not any(ch.isalnum() and ch not in latin for ch in literal)
    return _Term(term, literal, None, edges and literal[0] in latin,
                 edges and not wildcard and literal[-1] in latin, wildcard)  # fmt: skip


def _expand(
    term: str, aliases: Mapping[str, Sequence[str]], seen: tuple[str, ...] = ()
) -> list[str]:
    if not term.strip().startswith("@"):
        return [term]
    name = term.strip()[1:]
    if name not in aliases:
        raise TermError(term, f"unknown alias {name!r}")
    if name in seen:
        raise TermError(term, f"alias {name!r} refers to itself")
    found = [t for member in aliases[name] for t in _expand(member, aliases, (*seen, name))]
    if not found:
        raise TermError(term, f"alias {name!r} has no terms")
    return found


def _terms(terms: Iterable[str], aliases: Mapping[str, Sequence[str]]) -> tuple[_Term, ...]:
    return tuple(_parse(t) for term in terms for t in _expand(term, aliases))


def check_term(term: str, aliases: Mapping[str, Sequence[str]]) -> None:
    """Raise TermError when `term` (or, for "@name", every term of the alias) cannot be compiled."""
    _terms([term], aliases)


@dataclass(frozen=True, slots=True)
class _Rule:
    key: str
    groups: tuple[tuple[_Term, ...], ...]
    any: tuple[_Term, ...]
    none: tuple[_Term, ...]
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
        groups = tuple(_terms(g, aliases) for g in spec.all)
        return _Rule(key, groups, _terms(spec.any, aliases), _terms(spec.none, aliases),
                     tuple(spec.fields))  # fmt: skip
    except TermError as exc:
        raise TermError(exc.term, exc.reason, rule=key) from None


# A strategy gives the leftmost hit (term, field, start, end) of any of the terms, in the
# first field (in rule order) that has one; offsets are in the normalized field text.
_First = Callable[[tuple[_Term, ...], tuple[str, ...]], "tuple[_Term, str, int, int] | None"]
_Found = list[tuple[int | None, _Term, str, int, int]]


def _evaluate(rule: _Rule, first: _First, vetoes: bool = True) -> _Found | None:
    found: _Found = []
    for index, group in enumerate(rule.groups):
        hit = first(group, rule.fields)
        if hit is None:
            return None
        found.append((index, *hit))
    if rule.any:
        hit = first(rule.any, rule.fields)
        if hit is None:
            return None
        found.append((None, *hit))
    if vetoes and rule.none and first(rule.none, rule.fields) is not None:
        return None
    return found


def _first_regex(pattern: re.Pattern[str], text: str) -> tuple[int, int] | None:
    for m in pattern.finditer(text):
        if m.end() > m.start():  # a zero-width match has nothing to show
            return m.span()
    return None


def _first_at(
    term: _Term, text: str, ends: list[int], latin: frozenset[str]
) -> tuple[int, int] | None:
    """The first occurrence (automaton end offsets, inclusive) that honours the term's boundaries."""
    size, length = len(term.literal), len(text)
    for end in ends:
        start, stop = end - size + 1, end + 1
        if term.left and start and text[start - 1] in latin:
            continue
        if term.wildcard:
            while stop < length and text[stop] in latin:
                stop += 1
        elif term.right and stop < length and text[stop] in latin:
            continue
        return start, stop
    return None


def _explain(key: str, found: _Found, texts: dict[str, MappedText]) -> Match:
    hits = []
    for group, term, name, start, end in found:
        first, last = texts[name].original_span(start, end)
        hits.append(Hit(group, term.source, name, first, last, texts[name].original[first:last]))
    return Match(key, tuple(hits))


@dataclass(frozen=True, slots=True)
class _Index:
    """Which rules a set of literal hits can satisfy."""

    literals: set[str]  # every literal term: the automaton's words
    anchors: dict[str, frozenset[int]]  # literal -> rules whose rarest part it can satisfy
    required: list[tuple[frozenset[str], ...]]  # rule -> literals of each part but the rarest
    vetoes: list[frozenset[str] | None]  # rule -> literals of its vetoes; None: has a regex veto
    always: list[int]  # rules with a regex in every part: no literal can rule them out


def _literal_parts(rule: _Rule) -> list[tuple[_Term, ...]]:
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


class Matcher:
    """All rules compiled once; literal terms share one Aho-Corasick automaton as a prefilter."""

    def __init__(self, rules: Sequence[_Rule]) -> None:
        self._rules = sorted(rules, key=lambda r: r.key)
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
        for name in self._fields:
            texts[name] = mapped = MappedText(doc.get(name) or "")
            text = mapped.text
            found: dict[str, list[int]] = {}
            occurrences[name] = found
            if self._automaton is not None and text:
                for end, literal in self._automaton.iter(text):
                    if literal in found:
                        found[literal].append(end)
                    else:
                        found[literal] = [end]
        return texts, occurrences

    def _candidates(self, literals: set[str]) -> list[int]:
        index, anchors = self._index, self._index.anchors
        touched: set[int] = set().union(*[anchors[lit] for lit in literals if lit in anchors])
        chosen = [i for i in touched if all(not p.isdisjoint(literals) for p in index.required[i])]
        return sorted(chosen + index.always) if index.always else sorted(chosen)

    def match(self, doc: Mapping[str, str]) -> list[Match]:
        """Every rule that matches `doc` (keys title, summary, content; missing = ""), by rule key."""
        texts, occurrences = self._scan(doc)
        literals: set[str] = set().union(*occurrences.values())
        first = _automaton_first(texts, occurrences)
        matches = []
        for i in self._candidates(literals):
            vetoes = self._index.vetoes[i]
            found = _evaluate(
                self._rules[i], first, vetoes is None or not vetoes.isdisjoint(literals)
            )
            if found is not None:
                matches.append(_explain(self._rules[i].key, found, texts))
        return matches

    def match_one(self, rule: str, doc: Mapping[str, str]) -> Match | None:
        """The match of one rule (KeyError if unknown), checked without the prefilter."""
        texts, occurrences = self._scan(doc)
        found = _evaluate(self._rules[self._positions[rule]], _automaton_first(texts, occurrences))
        return None if found is None else _explain(rule, found, texts)


def _automaton_first(
    texts: dict[str, MappedText], occurrences: dict[str, dict[str, list[int]]]
) -> _First:
    latin = _latin()[0]

    def first(
        terms: tuple[_Term, ...], fields: tuple[str, ...]
    ) -> tuple[_Term, str, int, int] | None:
        for name in fields:
            text, found, best = texts[name].text, occurrences[name], None
            for term in terms:
                if term.regex is not None:
                    span = _first_regex(term.regex, text)
                elif term.literal in found:
                    span = _first_at(term, text, found[term.literal], latin)
                else:
                    continue
                if span is not None and (best is None or span[0] < best[2]):
                    best = (term, name, *span)
            if best is not None:
                return best
        return None

    return first


def compile_matcher(rules: Mapping[str, RuleSpec], aliases: Mapping[str, Sequence[str]]) -> Matcher:
    """Compile every rule (TermError names the rule and the term at fault)."""
    return Matcher([_compile(key, spec, aliases) for key, spec in rules.items()])


@lru_cache(maxsize=4096)
def _plain_pattern(term: _Term) -> re.Pattern[str]:
    latin = _latin()[1]
    before = f"(?<![{latin}])" if term.left else ""
    after = f"[{latin}]*" if term.wildcard else f"(?![{latin}])" if term.right else ""
    return re.compile(before + re.escape(term.literal) + after)


def match_plain(
    rule: RuleSpec, aliases: Mapping[str, Sequence[str]], doc: Mapping[str, str], *, key: str = ""
) -> Match | None:
    """The reference check of one rule: boundaries as regex look-arounds, no automaton."""
    compiled = _compile(key, rule, aliases)
    texts = {name: MappedText(doc.get(name) or "") for name in compiled.fields}

    def first(
        terms: tuple[_Term, ...], fields: tuple[str, ...]
    ) -> tuple[_Term, str, int, int] | None:
        for name in fields:
            spans = [
                (_first_regex(t.regex or _plain_pattern(t), texts[name].text), t) for t in terms
            ]
            hits = [(span[0], n, t, span) for n, (span, t) in enumerate(spans) if span]
            if hits:
                _, _, term, (start, end) = min(hits)
                return term, name, start, end
        return None

    found = _evaluate(compiled, first)
    return None if found is None else _explain(key, found, texts)
