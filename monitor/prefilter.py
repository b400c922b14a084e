"""The Aho-Corasick prefilter: one scan finds literal terms, an index the rules to check (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick

from monitor.rules import FIELDS, FirstHit, Rule
from monitor.terms import Term, first_at, first_regex, latin
from monitor.textfold import MappedText

Occurrences = dict[str, dict[str, list[int]]]  # field -> literal -> end offsets in its text


@dataclass(frozen=True, slots=True)
class _Index:
    """Which rules a set of literal hits can satisfy."""

    literals: set[str]  # every literal term: the automaton's words
    anchors: dict[str, frozenset[int]]  # literal -> rules whose rarest part it can satisfy
    required: list[tuple[frozenset[str], ...]]  # rule -> literals of each part but the rarest
    vetoes: list[frozenset[str] | None]  # rule -> literals of its vetoes; None: has a regex veto
    always: list[int]  # rules with a regex in every part: no literal can rule them out


def _literal_parts(rule: Rule) -> list[tuple[Term, ...]]:
    parts = [*rule.groups, *((rule.any,) if rule.any else ())]
    return [p for p in parts if all(t.regex is None for t in p)]


def _build_index(rules: Sequence[Rule]) -> _Index:
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


class Prefilter:
    """Every literal term of the rules in one automaton; rules are named by their position."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.fields = tuple(f for f in FIELDS if any(f in r.fields for r in rules))
        self._index = _build_index(rules)
        # rule -> literals of its vetoes (checked only if one was found); None: a regex veto
        self.vetoes = self._index.vetoes
        self._automaton: Any = None
        if self._index.literals:
            self._automaton = ahocorasick.Automaton()
            for literal in self._index.literals:
                self._automaton.add_word(literal, literal)
            self._automaton.make_automaton()

    def scan(self, doc: Mapping[str, str]) -> tuple[dict[str, MappedText], Occurrences]:
        """The fields of `doc` folded, and where each literal term ends in them."""
        texts: dict[str, MappedText] = {}
        occurrences: Occurrences = {}
        automaton = self._automaton
        for name in self.fields:
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

    def candidates(self, literals: set[str]) -> list[int]:
        """The rules (in order) that the literals found can satisfy, and those with no literal."""
        index, anchors = self._index, self._index.anchors
        touched: set[int] = set().union(*[anchors[lit] for lit in literals if lit in anchors])
        required, absent = index.required, literals.isdisjoint
        chosen = [i for i in touched if not any(map(absent, required[i]))]
        return sorted(chosen + index.always) if index.always else sorted(chosen)


def first_hits(
    texts: dict[str, MappedText], occurrences: Occurrences, timed_out: dict[Term, str]
) -> FirstHit:
    """The first-hit strategy over a scan: literal terms at their occurrences, regexes searched.

    A regex whose search runs out of time finds nothing in this document: `timed_out` gets it,
    with the field where it happened, and it is not searched again (in a later field or part).
    """
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
                    if timed_out and term in timed_out:
                        continue
                    try:
                        span = first_regex(term.regex, text)
                    except TimeoutError:
                        timed_out[term] = name
                        continue
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
