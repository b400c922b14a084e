r"""One term: parsed (literal, regex, Latin word boundaries, aliases) and found in text (pure).

A `/regex/` term is written in `re`'s syntax and checked with `re`, then run by the `regex`
module (VERSION0, its `re`-compatible mode), which can stop a search where `re` cannot: every
search of one is bounded by REGEX_TIMEOUT and raises TimeoutError past it. One difference
remains: `regex`'s `\w` (and so `\b`) is Unicode's, with combining marks and joiners, without
the few numeric symbols NFKC leaves alone; they differ only where folded text keeps such a
character (a stray ﾞ, a Devanagari vowel sign, an emoji's joiner).
"""

from __future__ import annotations

import re
import re._parser as re_parser  # the tree of a pattern (see _nested_repeat)
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import cast

import regex

from monitor.textfold import normalize

# Seconds one search of one `/regex/` term in one field of one item may take. The check at load
# time refuses the exponential patterns it can see, not polynomial ones (with `re`,
# `\w+\w+\w+\w+\w+\w+\w+\w+!` took four minutes on 60 letters); feed text is anyone's,
# and items are matched on the poller's one writer thread, so one search must not hold it long.
REGEX_TIMEOUT = 0.1


class TermError(ValueError):
    """A term or rule cannot be compiled: bad regex, unknown alias, empty term or group."""

    def __init__(self, term: str | None, reason: str, *, rule: str | None = None) -> None:
        self.term, self.reason, self.rule = term, reason, rule
        where = f"rule {rule!r}: " if rule is not None else ""
        what = f"term {term!r}: " if term is not None else ""
        super().__init__(f"{where}{what}{reason}")


_REPEATS = (re_parser.MAX_REPEAT, re_parser.MIN_REPEAT, re_parser.POSSESSIVE_REPEAT)
_FEW = 3  # repeats of a part that a pattern may take without the risk of exponential time


def _backtracks(items: Iterable[tuple[object, object]], many: bool = False) -> bool:
    r"""Whether a parsed pattern can take exponential time on some text: inside a repetition
    of more than a few, a part of varying width (`(a+)+`, `(a|aa)+`) or alternatives that may
    start alike (`(.|\s)*`). Some linear patterns are refused too (`(\.\d+)+`); each has a
    form with one repetition (`[.\d]+`).

    Walks the tree re's own parser builds: a repeat's value is (min, max, sub-pattern), a
    branch's (None, alternatives); groups and look-arounds hold their sub-patterns.
    """
    for op, value in items:
        if op in _REPEATS:
            _, high, body = cast(tuple[int, int, re_parser.SubPattern], value)
            if high > _FEW:  # a few repeats ({0,2}) cost a small power of the length at most
                low_width, high_width = body.getwidth()
                if low_width != high_width:
                    return True
            if _backtracks(body, many or high > _FEW):
                return True
        elif op is re_parser.BRANCH:
            alternatives = cast(tuple[None, list[re_parser.SubPattern]], value)[1]
            if many and _may_start_alike(alternatives):
                return True
            if any(_backtracks(alternative, many) for alternative in alternatives):
                return True
        elif any(_backtracks(sub, many) for sub in _subpatterns(value)):
            return True
    return False


def _may_start_alike(alternatives: Sequence[re_parser.SubPattern]) -> bool:
    """Unless every alternative starts with its own literal character, two may both match."""
    firsts = []
    for alternative in alternatives:
        if not len(alternative) or alternative[0][0] is not re_parser.LITERAL:
            return True
        firsts.append(alternative[0][1])
    return len(set(firsts)) < len(firsts)


def _subpatterns(value: object) -> Iterator[re_parser.SubPattern]:
    if isinstance(value, re_parser.SubPattern):  # an atomic group's value
        yield value
        return
    for part in value if isinstance(value, tuple | list) else ():
        if isinstance(part, re_parser.SubPattern):
            yield part
        elif isinstance(part, list):
            yield from (p for p in part if isinstance(p, re_parser.SubPattern))


@cache
def latin() -> tuple[frozenset[str], str]:
    """Latin letters and ASCII digits, as a set and as a regex class body."""
    chars = [
        chr(cp)
        for cp in range(0x20000)
        if chr(cp).isalpha() and "LATIN" in unicodedata.name(chr(cp), "")
    ]
    chars += list("0123456789")
    return frozenset(chars), "".join(f"\\U{ord(c):08x}" for c in sorted(chars))


@dataclass(frozen=True, slots=True)
class Term:
    """One compiled term: a normalized literal with its boundaries, or a regex."""

    source: str  # as written, for explanations
    literal: str = ""  # normalized, without the trailing "*"
    regex: regex.Pattern[str] | None = None
    left: bool = False  # a Latin letter or digit may not precede the match
    right: bool = False  # nor follow it
    wildcard: bool = False  # the match runs on over following Latin letters and digits


def parse_term(term: str) -> Term:
    """`/regex/` or a literal (optionally ending in `*`); TermError when it cannot compile."""
    stripped = term.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == "/":
        body = stripped[1:-1]
        try:  # re's syntax and its messages; `regex` reads a superset of it
            checked = re.compile(body, re.IGNORECASE)
        except re.error as exc:
            raise TermError(term, f"bad regular expression ({exc})") from None
        if checked.fullmatch(""):
            raise TermError(term, "regular expression matches the empty string")
        if _backtracks(re_parser.parse(body, re.IGNORECASE)):
            raise TermError(
                term,
                "regular expression repeats a part of varying length, or alternatives that may "
                "start alike, as in (a+)+ or (.|\\s)*: on the wrong headline such a pattern "
                "takes exponential time (catastrophic backtracking); write it with one repetition",
            )
        try:
            pattern = regex.compile(body, regex.IGNORECASE | regex.VERSION0)
        except regex.error as exc:  # nothing re accepts is known to fail here
            raise TermError(term, f"bad regular expression ({exc})") from None
        return Term(term, regex=pattern)
    literal = normalize(term)
    wildcard = literal.endswith("*")
    literal = literal.removesuffix("*")
    if not literal:
        raise TermError(term, "empty term")
    if "*" in literal or literal != literal.rstrip():
        raise TermError(term, "only a trailing * right after a word is allowed")
    letters = latin()[0]
    # A term with any non-Latin letter (kanji, kana, ...) matches as a plain substring.
    edges = not any(ch.isalnum() and ch not in letters for ch in literal)
    return Term(term, literal, None, edges and literal[0] in letters,
                edges and not wildcard and literal[-1] in letters, wildcard)  # fmt: skip


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


def compile_terms(terms: Iterable[str], aliases: Mapping[str, Sequence[str]]) -> tuple[Term, ...]:
    """Every term compiled, each "@name" replaced by the terms of its alias."""
    return tuple(parse_term(t) for term in terms for t in _expand(term, aliases))


def check_term(term: str, aliases: Mapping[str, Sequence[str]]) -> None:
    """Raise TermError when `term` (or, for "@name", every term of the alias) cannot be compiled."""
    compile_terms([term], aliases)


@lru_cache(maxsize=4096)
def plain_pattern(term: Term) -> re.Pattern[str]:
    """A literal term with its boundaries as regex look-arounds: the reference check's form."""
    letters = latin()[1]
    before = f"(?<![{letters}])" if term.left else ""
    after = f"[{letters}]*" if term.wildcard else f"(?![{letters}])" if term.right else ""
    return re.compile(before + re.escape(term.literal) + after)


def first_regex(pattern: regex.Pattern[str], text: str) -> tuple[int, int] | None:
    """The span of the first non-empty match of a `/regex/` term's `pattern` in `text`;
    TimeoutError when a search runs for more than REGEX_TIMEOUT seconds."""
    found = pattern.search(text, timeout=REGEX_TIMEOUT)
    if found is None or found.end() > found.start():  # the usual case: one search settles it
        return None if found is None else found.span()
    for m in pattern.finditer(text, timeout=REGEX_TIMEOUT):
        if m.end() > m.start():  # a zero-width match has nothing to show
            return m.span()
    return None


def first_at(
    term: Term, text: str, ends: list[int], letters: frozenset[str]
) -> tuple[int, int] | None:
    """The first occurrence (automaton end offsets, inclusive) that honours the term's boundaries."""
    size, length = len(term.literal), len(text)
    for end in ends:
        start, stop = end - size + 1, end + 1
        if term.left and start and text[start - 1] in letters:
            continue
        if term.wildcard:
            while stop < length and text[stop] in letters:
                stop += 1
        elif term.right and stop < length and text[stop] in letters:
            continue
        return start, stop
    return None
