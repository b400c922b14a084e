"""Checks across entries of feeds.toml: unique ids, known channels, known aliases.

They read the raw TOML data, not the models, so they still run (and report) when other keys
of the same file fail validation; anything malformed is skipped here and reported there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from monitor.config.problems import Loc, Problem, suggestion
from monitor.config.values import term_problem


def reference_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Every cross-reference problem in the raw file, in file order per section."""
    problems = [
        *_duplicates(raw, "feeds", "id"),
        *_duplicates(raw, "feeds", "url"),
        *_duplicates(raw, "channels", "id"),
        *_duplicates(raw, "milestones", "id"),
    ]
    aliases = raw.get("aliases", {})
    if isinstance(aliases, dict):
        problems.extend(_nested_aliases(aliases))
    channels = {
        entry["id"] for _, entry in _entries(raw, "channels") if isinstance(entry.get("id"), str)
    }
    for i, milestone in _entries(raw, "milestones"):
        problems.extend(_notify(("milestones", i), milestone.get("notify"), channels))
        if isinstance(aliases, dict):
            for loc, term in _rule_terms(("milestones", i), milestone):
                problem = _alias_problem(term, aliases)
                if problem is not None:
                    problems.append((loc, problem))
    return problems


def _alias_problem(term: str, aliases: Mapping[str, Any]) -> str | None:
    """An `@name` term that the matcher cannot expand because no such alias exists.

    Other terms are checked where they are validated (values.Term); a problem inside an
    existing alias is reported once, at that alias's own entry.
    """
    if not term.startswith("@") or len(term) < 2:
        return None
    usable = {
        name: [t for t in terms if isinstance(t, str)]
        for name, terms in aliases.items()
        if isinstance(terms, list)
    }
    if term_problem(term, usable) is None or term.strip()[1:] in aliases:
        return None
    return f"unknown alias {term!r}" + suggestion(term, (f"@{a}" for a in aliases))


def _entries(raw: Mapping[str, Any], section: str) -> Iterator[tuple[int, dict[str, Any]]]:
    entries = raw.get(section)
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            if isinstance(entry, dict):
                yield i, entry


def _duplicates(raw: Mapping[str, Any], section: str, key: str) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, entry in _entries(raw, section):
        value = entry.get(key)
        if not isinstance(value, str):
            continue
        if value in first:
            yield (section, i, key), f"duplicate {key} {value!r} (also {section}[{first[value]}])"
        else:
            first[value] = i


def _nested_aliases(aliases: Mapping[str, Any]) -> Iterator[Problem]:
    for name, terms in aliases.items():
        for k, term in enumerate(terms if isinstance(terms, list) else ()):
            if isinstance(term, str) and term.startswith("@"):
                yield ("aliases", name, k), f"an alias cannot use another alias ({term!r})"


def _notify(base: Loc, notify: Any, channels: set[str]) -> Iterator[Problem]:
    for k, name in enumerate(notify if isinstance(notify, list) else ()):
        if isinstance(name, str) and name not in channels:
            hint = suggestion(name, channels) if channels else " (no channels are defined)"
            yield (*base, "notify", k), f"unknown channel {name!r}{hint}"


def _rule_terms(base: Loc, milestone: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
    rules: list[tuple[Loc, Any]] = [((*base, "match"), milestone.get("match"))]
    setbacks = milestone.get("setback")
    if isinstance(setbacks, list):
        rules.extend(((*base, "setback", s), rule) for s, rule in enumerate(setbacks))
    for loc, rule in rules:
        if not isinstance(rule, dict):
            continue
        groups = rule.get("all")
        for g, group in enumerate(groups if isinstance(groups, list) else ()):
            for t, term in enumerate(group if isinstance(group, list) else ()):
                if isinstance(term, str):
                    yield (*loc, "all", g, t), term
        for key in ("any", "none"):
            terms = rule.get(key)
            for t, term in enumerate(terms if isinstance(terms, list) else ()):
                if isinstance(term, str):
                    yield (*loc, key, t), term
