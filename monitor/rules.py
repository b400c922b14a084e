"""One rule: compiled from its spec, its parts looked for, its hits explained (pure).

How a part's first hit is found is the caller's strategy (`FirstHit`): the matcher's uses the
prefilter's scan, the reference check plain regular expressions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.terms import Term, TermError, compile_terms
from monitor.textfold import MappedText

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
class TimedOut:
    """A `/regex/` term whose search in a document ran out of time: no match there, for a rule
    that looked for it."""

    rule: str
    term: str  # as written
    field: str  # the field whose search ran out of time; the term was not looked for after it


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule with its terms compiled."""

    key: str
    groups: tuple[tuple[Term, ...], ...]
    any: tuple[Term, ...]
    none: tuple[Term, ...]
    fields: tuple[str, ...]


def compile_rule(key: str, spec: RuleSpec, aliases: Mapping[str, Sequence[str]]) -> Rule:
    """The rule's terms compiled (TermError names the rule, and the term if one is at fault)."""
    unknown = [f for f in spec.fields if f not in FIELDS]
    problem = (f"unknown field {unknown[0]!r}" if unknown
               else "no fields to search" if not spec.fields
               else "needs a term in `all` or `any`" if not (spec.all or spec.any)
               else "an `all` group is empty" if not all(spec.all) else None)  # fmt: skip
    if problem:
        raise TermError(None, problem, rule=key)
    try:
        groups = tuple(compile_terms(g, aliases) for g in spec.all)
        return Rule(key, groups, compile_terms(spec.any, aliases),
                    compile_terms(spec.none, aliases), tuple(spec.fields))  # fmt: skip
    except TermError as exc:
        raise TermError(exc.term, exc.reason, rule=key) from None


# A strategy gives the leftmost hit (term, field, start, end) of any of the terms, in the
# first field (in rule order) that has one; offsets are in the normalized field text.
FirstHit = Callable[[tuple[Term, ...], tuple[str, ...]], "tuple[Term, str, int, int] | None"]
Found = list[tuple[int | None, Term, str, int, int]]


def locate(rule: Rule, first: FirstHit, vetoes: bool = True) -> Found | None:
    """Each part's first hit (group index, or None for `any`), or None: a part unmet or vetoed.

    `vetoes=False` skips the `none` terms when the caller knows none of them is present.
    """
    found: Found = []
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


Explained = dict[tuple[int | None, str, str, int, int], Hit]


def explain(key: str, found: Found, texts: dict[str, MappedText], seen: Explained) -> Match:
    """The match of rule `key`, its hits mapped back to the original field texts."""
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
