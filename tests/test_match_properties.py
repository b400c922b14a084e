"""Properties: normalization is idempotent and mappable; matching ignores case and width; the
automaton matcher agrees with the plain per-rule check."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.match import compile_matcher, match_plain
from monitor.rules import Match, RuleSpec
from monitor.textfold import normalize, normalize_mapped

# Text that exercises the hard parts: width and case forms, kana voicing marks, expansions,
# combining marks, compatibility characters and every kind of white space.
TRICKY = list("aAzZ09 \t\n\u3000\u00a0ｱﾞﾟﾃｶﾞﾊﾟＡｚ０ßẞİıσςΣﬁ①㈱¨゛e\u0301\u0323Å\u212bあ漢'（）-")
texts = st.text(alphabet=st.sampled_from(TRICKY), max_size=30) | st.text(max_size=30)


@given(texts)
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


@given(texts, st.data())
def test_mapped_spans_cover_what_they_explain(text: str, data: st.DataObject) -> None:
    mapped = normalize_mapped(text)
    assert mapped.text == normalize(text)
    if not mapped.text:
        return
    start = data.draw(st.integers(0, len(mapped.text) - 1))
    end = data.draw(st.integers(start + 1, len(mapped.text)))
    first, last = mapped.original_span(start, end)
    assert 0 <= first < last <= len(text)
    assert normalize(mapped.text[start:end]) in normalize(text[first:last])


WORDS = ["nec", "NEC", "award", "Awarded", "necessary", "train", "training", "press", "release",
         "fy2025", "3m", "ai", "採択", "延期", "ノエトラ", "ﾉｴﾄﾗ", "学習", "日本電気", "株", "ﾃﾞｰﾀ"]  # fmt: skip
GLUE = [" ", "", "\n", "  ", "、", "（", "）", "'s ", "は", "-", "ＮＥＤＯ", "①", "㈱", "100億円"]
TERMS = [*WORDS, "award*", "train*", "nec*", "press release", "ai training", "nedo", "(株)",
         r"/\d+億円/", r"/fy ?20\d\d/", "/採.?択/", "@co", "@setback"]  # fmt: skip
ALIASES = {"co": ["NEC", "日本電気", "ｎｅｄｏ"], "setback": ["延期", "delay*"]}

documents = st.fixed_dictionaries(
    {},
    optional={
        field: st.lists(st.sampled_from(WORDS + GLUE), max_size=14).map("".join)
        for field in ("title", "summary", "content")
    },
)
terms = st.lists(st.sampled_from(TERMS), min_size=1, max_size=3).map(tuple)
rule_specs = st.builds(
    RuleSpec,
    all=st.lists(terms, min_size=1, max_size=2).map(tuple),
    any=st.lists(st.sampled_from(TERMS), max_size=3).map(tuple),
    none=st.lists(st.sampled_from(TERMS), max_size=2).map(tuple),
    fields=st.permutations(["title", "summary", "content"]).flatmap(
        lambda order: st.integers(1, 3).map(lambda n: tuple(order[:n]))
    ),
)
rule_sets = st.dictionaries(st.sampled_from([f"m{i}:progress" for i in range(8)]), rule_specs,
                            min_size=1, max_size=6)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(rule_sets, documents)
@example({"m": RuleSpec(all=(("nec", r"/\d+億円/"),))}, {"title": "nec"})  # literal beside a regex
def test_matcher_equals_plain_check_of_every_rule(
    rules: dict[str, RuleSpec], doc: dict[str, str]
) -> None:
    expected = [match_plain(rules[key], ALIASES, doc, key=key) for key in sorted(rules)]
    assert compile_matcher(rules, ALIASES).match(doc) == [m for m in expected if m is not None]


def _shifted(text: str, choices: list[int]) -> str:
    """Swap ASCII characters for upper, lower or full-width forms (all one character long)."""
    out = []
    for ch, choice in zip(text, choices + [0] * len(text), strict=False):
        if " " <= ch <= "~" and choice == 1:
            ch = ch.swapcase()
        elif " " <= ch <= "~" and choice == 2:
            ch = "\u3000" if ch == " " else chr(ord(ch) + 0xFEE0)
        out.append(ch)
    return "".join(out)


def _where(found: list[Match]) -> list[tuple[str, list[tuple[object, ...]]]]:
    return [(m.rule, [(h.group, h.term, h.field, h.start, h.end) for h in m.hits]) for m in found]


@settings(max_examples=200, deadline=None)
@given(rule_sets, documents, st.lists(st.integers(0, 2), max_size=200))
def test_matching_ignores_case_and_width(
    rules: dict[str, RuleSpec], doc: dict[str, str], choices: list[int]
) -> None:
    matcher = compile_matcher(rules, ALIASES)
    shifted = {field: _shifted(text, choices) for field, text in doc.items()}
    assert _where(matcher.match(shifted)) == _where(matcher.match(doc))
