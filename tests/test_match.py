"""The rule language: boundaries, prefixes, phrases, CJK, NFKC, regexes, vetoes, explanations."""

from __future__ import annotations

import re

import pytest

from monitor.match import compile_matcher, match_plain
from monitor.rules import Hit, Match, RuleSpec, TimedOut
from monitor.terms import TermError, check_term, first_regex, parse_term
from monitor.textfold import normalize

ALIASES = {
    "nec": ["NEC", "日本電気"],
    "setback": ["延期", "postpone*"],
    "all_co": ["@nec", "富士通"],
}


def matches(term: str, text: str) -> bool:
    """Whether a one-term rule matches a title, checked by the matcher and the reference."""
    rule = RuleSpec(all=((term,),))
    found = compile_matcher({"r": rule}, ALIASES).match({"title": text})
    assert (match_plain(rule, ALIASES, {"title": text}) is not None) == bool(found)
    return bool(found)


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        ("NEC", "NEC", True),
        ("NEC", "NEC's new chip", True),
        ("NEC", "NECは採択された", True),
        ("NEC", "（NEC）が発表", True),
        ("NEC", "日本のNECが", True),
        ("NEC", "by NEC.", True),
        ("NEC", "nec-made", True),
        ("NEC", "necessary", False),
        ("NEC", "connection", False),
        ("NEC", "NECTAR", False),
        ("NEC", "NEC2", False),
        ("NEC", "2NEC", False),
        ("NEC", "ÉNEC", False),
        ("3M", "3Mの新製品", True),
        ("3M", "13M", False),
        ("C++", "C++x", True),
        ("C++", "aC++", False),
        (".NET", "ASP.NET Core", True),  # a term that starts with no letter has no left edge
    ],
)
def test_latin_terms_match_only_at_latin_word_boundaries(
    term: str, text: str, expected: bool
) -> None:
    assert matches(term, text) is expected


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        ("award*", "awarded a grant", True),
        ("award*", "two awards", True),
        ("award*", "award", True),
        ("award*", "Award-winning", True),
        ("award*", "rewarded", False),
        ("award*", "awa", False),
        ("train*", "トレーニングtrainingを開始", True),
    ],
)
def test_trailing_star_allows_a_latin_suffix(term: str, text: str, expected: bool) -> None:
    assert matches(term, text) is expected


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        ("press release", "a Press Release today", True),
        ("press release", "press\n\n   release", True),
        ("press release", "press\trelease", True),
        ("press  release", "press release", True),
        ("press release", "pressrelease", False),
        ("press release", "press releases", False),
    ],
)
def test_phrases_match_across_any_white_space(term: str, text: str, expected: bool) -> None:
    assert matches(term, text) is expected


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        ("採択", "採択された", True),
        ("採択", "不採択", True),
        ("延期", "打ち上げを延期へ", True),
        ("打ち上げ", "打上げ", False),
        ("NEC製", "ANEC製品", True),
    ],
)
def test_cjk_terms_match_as_substrings(term: str, text: str, expected: bool) -> None:
    assert matches(term, text) is expected


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("ＮＥＤＯ", "NEDO"),
        ("NEDO", "ＮＥＤＯ"),
        ("nedo", "ＮＥＤＯの公募"),
        ("ﾉｴﾄﾗ", "ノエトラ"),
        ("ノエトラ", "ﾉｴﾄﾗ社"),
        ("ﾃﾞｰﾀ", "データセンター"),
        ("123億円", "１２３億円"),
        ("１２３億円", "123億円"),
        ("strasse", "Straße"),
        ("(株)", "㈱日立"),
    ],
)
def test_terms_and_text_are_nfkc_and_case_folded(term: str, text: str) -> None:
    assert matches(term, text)


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        (r"/\d+億円/", "売上１００億円", True),
        (r"/\d+億円/", "億円", False),
        (r"/fy ?20\d\d/", "FY2025", True),
        (r"/fy ?20\d\d/", "fy 2031", True),
        (r"/phase (ii|2)\b/", "Phase II trial", True),
        (r"/^nec/", "NECは", True),
        (r"/^nec/", "the NEC", False),
    ],
)
def test_regex_terms_apply_to_normalized_text(term: str, text: str, expected: bool) -> None:
    assert matches(term, text) is expected


DOC = {"title": "NEC、量子計算機の打ち上げを延期", "summary": "Launch postponed.", "content": ""}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (RuleSpec(all=(("NEC",), ("打ち上げ", "launch*"))), True),
        (RuleSpec(all=(("NEC",), ("打ち上げ",)), none=("延期",)), False),
        (RuleSpec(all=(("NEC",),), none=("@setback",)), False),
        (RuleSpec(all=(("NEC",),), none=("cancel*",)), True),
        (RuleSpec(all=(("NEC",),), none=("延期",), fields=("title",)), False),
        (RuleSpec(all=(("NEC",),), none=("postpone*",), fields=("title",)), True),
        (RuleSpec(all=(("NEC",), ("富士通",))), False),
        (RuleSpec(all=(("NEC",),), any=("富士通", "launch*")), True),
        (RuleSpec(all=(("NEC",),), any=("富士通", "award*")), False),
        (RuleSpec(any=("富士通", "量子")), True),
        (RuleSpec(all=(("launch*",),), fields=("title",)), False),
        (RuleSpec(all=(("launch*",),), fields=("summary",)), True),
        (RuleSpec(all=(("launch*",),), fields=("content",)), False),
        (RuleSpec(all=(("@nec",), ("@setback",))), True),
        (RuleSpec(all=(("@all_co",),), fields=("summary",)), False),
        (RuleSpec(all=((r"/量子\w+/",), ("NEC",))), True),
    ],
)
def test_groups_any_vetoes_fields_and_aliases(rule: RuleSpec, expected: bool) -> None:
    found = compile_matcher({"r": rule}, ALIASES).match(DOC)
    assert bool(found) is expected
    assert (match_plain(rule, ALIASES, DOC) is not None) is expected


EXPLAINED = [
    (
        RuleSpec(all=(("NEC", "日本電気"), ("延期", "postpone*"))),
        {"title": "（ＮＥＣ）の打ち上げ延期", "summary": "NEC postponed"},
        [(0, "NEC", "title", 1, 4, "ＮＥＣ"), (1, "延期", "title", 10, 12, "延期")],
    ),
    (
        RuleSpec(all=(("ﾃﾞｰﾀｾﾝﾀｰ",),), any=("award*",)),
        {"summary": "新ﾃﾞｰﾀｾﾝﾀｰ\nwas  AWARDED today"},
        [(0, "ﾃﾞｰﾀｾﾝﾀｰ", "summary", 1, 9, "ﾃﾞｰﾀｾﾝﾀｰ"),
         (None, "award*", "summary", 15, 22, "AWARDED")],
    ),
    (
        RuleSpec(all=(("press release",),), fields=("content", "title")),
        {"title": "Press release", "content": "Our\tpress \n release: ok"},
        [(0, "press release", "content", 4, 19, "press \n release")],
    ),
    (
        RuleSpec(all=((r"/\d+億円/",), ("株",))),
        {"title": "㈱ソニー、１２０億円", "content": ""},
        [(0, r"/\d+億円/", "title", 5, 10, "１２０億円"), (1, "株", "title", 0, 1, "㈱")],
    ),
    (
        RuleSpec(all=(("strasse",), ("1",))),
        {"title": "  Große Straße ①"},
        [(0, "strasse", "title", 8, 14, "Straße"), (1, "1", "title", 15, 16, "①")],
    ),
    (
        RuleSpec(all=(("@nec",),)),
        {"title": "日本電気とNEC"},
        [(0, "日本電気", "title", 0, 4, "日本電気")],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "doc", "expected"), EXPLAINED)
def test_hits_name_term_field_and_original_span(
    rule: RuleSpec, doc: dict[str, str], expected: list[tuple[int | None, str, str, int, int, str]]
) -> None:
    found = compile_matcher({"m:progress": rule}, ALIASES).match(doc)
    assert [m.rule for m in found] == ["m:progress"]
    hits = found[0].hits
    assert [(h.group, h.term, h.field, h.start, h.end, h.text) for h in hits] == expected
    for hit in hits:
        assert doc[hit.field][hit.start : hit.end] == hit.text
    assert match_plain(rule, ALIASES, doc, key="m:progress") == found[0]


def test_leftmost_alternative_explains_a_group() -> None:
    rule = RuleSpec(all=(("postpone*", "延期", "delay*"),))
    found = compile_matcher({"r": rule}, {}).match({"title": "遅れ: delayed, then 延期"})
    assert [(h.term, h.text) for h in found[0].hits] == [("delay*", "delayed")]


def test_first_field_in_rule_order_explains_a_group() -> None:
    rule = RuleSpec(all=(("NEC",),), fields=("content", "title"))
    found = compile_matcher({"r": rule}, {}).match({"title": "NEC", "content": "x NEC"})
    assert [(h.field, h.start) for h in found[0].hits] == [("content", 2)]


def test_results_are_ordered_by_rule_key_and_match_one_checks_one_rule() -> None:
    rules = {
        "b:setback:0": RuleSpec(all=(("延期",),)),
        "a:progress": RuleSpec(all=(("NEC",),)),
        "c:other": RuleSpec(all=(("富士通",),)),
    }
    matcher = compile_matcher(rules, {})
    doc = {"title": "NECが延期"}
    assert [m.rule for m in matcher.match(doc)] == ["a:progress", "b:setback:0"]
    one = matcher.match_one("b:setback:0", doc)
    assert one == Match("b:setback:0", (Hit(0, "延期", "title", 4, 6, "延期"),))
    assert matcher.match_one("c:other", doc) is None
    with pytest.raises(KeyError):
        matcher.match_one("missing", doc)


def test_missing_fields_count_as_empty() -> None:
    matcher = compile_matcher({"r": RuleSpec(all=(("NEC",),), fields=("content",))}, {})
    assert matcher.match({"title": "NEC"}) == []


def test_hit_to_dict() -> None:
    hit = Hit(None, "award*", "summary", 3, 10, "Awarded")
    assert hit.to_dict() == {"group": None, "term": "award*", "field": "summary",
                             "start": 3, "end": 10, "text": "Awarded"}  # fmt: skip


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("@missing", "term '@missing': unknown alias 'missing'"),
        ("/(/", "term '/(/': bad regular expression (missing ), unterminated subpattern"),
        ("//", "term '//': regular expression matches the empty string"),
        ("/a*/", "term '/a*/': regular expression matches the empty string"),
        ("", "term '': empty term"),
        ("  ", "term '  ': empty term"),
        ("*", "term '*': empty term"),
        ("aw*rd", "term 'aw*rd': only a trailing *"),
        ("award *", "term 'award *': only a trailing *"),
        ("@loop", "term '@loop': alias 'loop' refers to itself"),
        ("@empty", "term '@empty': alias 'empty' has no terms"),
        ("@bad", "term '/[/': bad regular expression"),
        # catastrophic backtracking: a repetition inside a repetition, however it is spelled
        ("/(a+)+$/", "term '/(a+)+$/': regular expression repeats a part"),
        (r"/(\w+\s?)+x/", r"term '/(\\w+\\s?)+x/': regular expression repeats a part"),
        ("/(x|y+)*z/", "term '/(x|y+)*z/': regular expression repeats a part"),
        ("/(?:a{2,})+b/", "term '/(?:a{2,})+b/': regular expression repeats a part"),
        ("/n((a|b)+c)*/", "term '/n((a|b)+c)*/': regular expression repeats a part"),
        ("/n(?:a+){1,50}/", "term '/n(?:a+){1,50}/': regular expression repeats a part"),
        ("/(a?a?)+b/", "term '/(a?a?)+b/': regular expression repeats a part"),
        ("/(a|aa)+b/", "term '/(a|aa)+b/': regular expression repeats a part"),
        (r"/launch(.|\s)*delayed/", r"term '/launch(.|\\s)*delayed/': regular expression repeats"),
        ("/(?>(a+)+b)/", "term '/(?>(a+)+b)/': regular expression repeats a part"),
    ],
)
def test_check_term_rejects_bad_terms_naming_them(term: str, message: str) -> None:
    aliases = {"loop": ["@loop2"], "loop2": ["@loop"], "empty": [], "bad": ["ok", "/[/"]}
    with pytest.raises(TermError) as caught:
        check_term(term, aliases)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "term",
    [
        "NEC",
        "award*",
        "press release",
        "採択",
        r"/\d+億円/",
        "@nec",
        "/(?:foo|bar)+/",
        "/(?:ab|cd)+/",
        "/phase (ii|2)\\b/",
        "/(?:ab){2}/",
        "/launch (?:[a-z0-9-]+ ){0,2}model/",
    ],
)
def test_check_term_accepts_good_terms(term: str) -> None:
    check_term(term, ALIASES)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (RuleSpec(), "rule 'x': needs a term in `all` or `any`"),
        (RuleSpec(all=(("NEC",), ())), "rule 'x': an `all` group is empty"),
        (RuleSpec(all=(("NEC",),), fields=("body",)), "rule 'x': unknown field 'body'"),
        (RuleSpec(all=(("NEC",),), fields=()), "rule 'x': no fields to search"),
        (RuleSpec(all=(("@nope",),)), "rule 'x': term '@nope': unknown alias 'nope'"),
        (RuleSpec(all=(("NEC",),), none=("/)/",)), "rule 'x': term '/)/': bad regular expression"),
    ],
)
def test_compile_matcher_names_the_rule_at_fault(rule: RuleSpec, message: str) -> None:
    with pytest.raises(TermError) as caught:
        compile_matcher({"x": rule}, ALIASES)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_matcher_with_only_regex_rules_checks_them_all() -> None:
    matcher = compile_matcher({"r": RuleSpec(all=((r"/第\d+回/",),))}, {})
    assert [m.rule for m in matcher.match({"content": "第３回公募"})] == ["r"]
    assert matcher.match({"content": "公募"}) == []


@pytest.mark.parametrize(
    ("term", "text"),
    [
        (r"/\d+億円/", "㈱ソニー、１２０億円の受注"),
        (r"/\b(?:to|will|would|plans? to) (?:establish|set up|form)\b/", "JV Plans To Form in May"),
        ("/スタート(?!アップ)/", "スタートアップがスタート"),
        (
            "/(?<![a-z])models?(?![a-z])(?! development)/",
            "Supermodels and model development, models",
        ),
        ("/(?<!than )(?<!as )expected/", "sooner than expected, as expected, expected"),
        ("/にも[^、。 ]{0,8}(?:開始|始動)/", "学習は10月にも開始、来春にも始動"),
        (
            r"/launch(?:es|ed)? (?:the |a )?(?:[a-z0-9-]+ ){0,2}models?\b/",
            "Launched the first LLM models",
        ),
        (r"/\w+-\w+ \W/", "Straße ①, state-of-the-art —"),
        ("/ﾉｴﾄﾗ|noetra/", "ＮＯＥＴＲＡ"),
    ],
)
def test_regex_terms_find_what_re_finds(term: str, text: str) -> None:
    """`regex` runs the terms; `re`, which reads their syntax, would find the same spans."""
    folded = normalize(text)
    pattern = parse_term(term).regex
    assert pattern is not None
    expected = re.search(term[1:-1], folded, re.IGNORECASE)
    assert expected is not None
    assert first_regex(pattern, folded) == expected.span()


# Patterns the load-time check lets through, though their search can take long on a run of
# one letter: `re` takes minutes on 60 letters for the first (`regex` settles it at once), the
# second is polynomial in `regex` too, the third exponential in any backtracking engine.
POLYNOMIAL_RE = r"/\w+\w+\w+\w+\w+\w+\w+\w+!/"
POLYNOMIAL = r"/\w+\w+\w+\w+\w+\w+\w+\w+\d/"
EXPONENTIAL = "/" + "(?:a|a)" * 30 + "b/"


@pytest.mark.timeout(30)
def test_a_polynomial_regex_is_accepted_and_finishes_on_a_run_of_letters() -> None:
    check_term(POLYNOMIAL_RE, {})
    outcome = compile_matcher({"m:progress": RuleSpec(any=(POLYNOMIAL_RE,))}, {}).outcome(
        {"title": "a" * 200}
    )
    assert outcome.matches == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("term", "letters"), [(POLYNOMIAL, 1000), (EXPONENTIAL, 200)])
def test_a_regex_search_that_runs_out_of_time_is_no_match_and_named(
    term: str, letters: int
) -> None:
    check_term(term, {})
    rules = {
        "m:progress": RuleSpec(any=(term, "nec")),  # the other alternative still matches
        "n:progress": RuleSpec(all=((term,),)),
        "v:setback:0": RuleSpec(all=(("nec",),), none=(term,)),  # a veto that never came
    }
    doc = {"title": "a" * letters + " nec", "summary": "a" * letters}
    outcome = compile_matcher(rules, {}).outcome(doc)
    assert [m.rule for m in outcome.matches] == ["m:progress", "v:setback:0"]
    # Searched once: after the title, the summary is not tried again.
    assert outcome.timed_out == tuple(TimedOut(key, term, "title") for key in sorted(rules))
    expected = [match_plain(rules[key], {}, doc, key=key) for key in sorted(rules)]
    assert outcome.matches == [m for m in expected if m is not None]
