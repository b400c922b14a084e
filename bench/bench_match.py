"""Rule matching throughput: 1,000 mixed Japanese/English rules against 5,000 news-like items."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence

from monitor.match import Matcher, compile_matcher, match_plain
from monitor.rules import Match, RuleSpec

RULES, ITEMS, PLAIN_ITEMS, SEED = 1_000, 5_000, 200, 20240601
Items = list[dict[str, str]]

COMPANIES = [
    ("NEC", "日本電気"), ("Fujitsu", "富士通"), ("Hitachi", "日立製作所"), ("Toyota", "トヨタ"),
    ("Sony", "ソニー"), ("Panasonic", "パナソニック"), ("SoftBank", "ソフトバンク"),
    ("Rakuten", "楽天"), ("NTT", "日本電信電話"), ("KDDI", "ＫＤＤＩ"), ("JAXA", "宇宙航空研究開発機構"),
    ("NEDO", "新エネルギー・産業技術総合開発機構"), ("Preferred Networks", "プリファードネットワークス"),
    ("Sakana AI", "サカナＡＩ"), ("CyberAgent", "サイバーエージェント"), ("Honda", "ホンダ"),
    ("Nissan", "日産"), ("Denso", "デンソー"), ("Kyocera", "京セラ"), ("Canon", "キヤノン"),
    ("Toshiba", "東芝"), ("Renesas", "ルネサス"), ("Rapidus", "ラピダス"), ("Kioxia", "キオクシア"),
    ("ispace", "アイスペース"), ("Astroscale", "アストロスケール"), ("IHI", "ＩＨＩ"),
    ("Mitsubishi Heavy", "三菱重工"), ("Takeda", "武田薬品"), ("Eisai", "エーザイ"),
]  # fmt: skip
SYLLABLES_EN = ["no", "va", "tek", "lu", "mi", "ra", "zen", "ko", "sys", "tron", "gen", "ix", "da"]
SYLLABLES_JA = [
    "ノ",
    "ヴァ",
    "テク",
    "ル",
    "ミ",
    "ラ",
    "ゼン",
    "コ",
    "シス",
    "トロン",
    "ゲン",
    "ダ",
]
PROGRESS = [
    ["採択", "selected", "award*"], ["train*", "学習を開始", "訓練"], ["launch*", "打ち上げ", "発売"],
    ["完成", "completed", "complete"], ["承認", "approv*"], ["稼働", "運用開始", "begins operation*"],
    ["量産", "mass production"], ["合意", "agreement", "agree*"], ["受注", "contract"],
]  # fmt: skip
TOPICS = [["量子コンピュータ", "quantum computer*"], ["生成AI", "LLM", "large language model*"],
          ["半導体", "semiconductor*", "chip*"], ["ロケット", "rocket*"], ["新薬", "drug*"]]  # fmt: skip
ALIASES = {"setback": ["延期", "postpone*", "delay*", "中止", "cancel*"],
           "hedge": ["噂", "rumor*", "検討", "予定"]}  # fmt: skip
# Untracked companies are built from other syllables, so no tracked name hides inside one.
OTHER_EN = ["ba", "qui", "fer", "hol", "wes", "pat", "cor", "dun", "sel", "vin"]
OTHER_JA = ["カ", "サ", "ハ", "マ", "ヤ", "ワ", "キ", "フ", "ホ", "メ"]
FILLER_WORDS = ["results", "network", "connection", "training data", "ネットワーク", "決算", "人事"]
REGEXES = [r"/\d+億円/", r"/fy ?20\d\d/", r"/第\d+回/", r"/phase (i|ii|iii|[123])\b/"]
FILLER_JA = ["同社は本日、新しい取り組みについて発表した。", "関係者によると、計画は順調に進んでいる。",
             "詳細は後日公表される見通しだ。", "業界では今後の動向に注目が集まっている。",
             "ﾃﾞｰﾀｾﾝﾀｰの整備も進める。", "２０２５年度の売上高は１２００億円を見込む。"]  # fmt: skip
FILLER_EN = ["The company said on Tuesday that the work is on schedule.",
             "Analysts expect further announcements later this year.",
             "A spokesperson declined to comment on the connection to earlier reports.",
             "The necessary approvals are expected by the end of FY2025.",
             "Shares rose 3% in Tokyo trading after the news."]  # fmt: skip


def _companies(
    rng: random.Random, count: int, taken: set[str], syllables: tuple[list[str], list[str]]
) -> list[tuple[str, str]]:
    made: list[tuple[str, str]] = []
    while len(made) < count:
        en = "".join(rng.choice(syllables[0]) for _ in range(rng.randint(2, 3))).capitalize()
        ja = "".join(rng.choice(syllables[1]) for _ in range(rng.randint(2, 4)))
        if en not in taken and ja not in taken:
            taken.update((en, ja))
            made.append((en, ja))
    return made


def make_rules(rng: random.Random, companies: list[tuple[str, str]]) -> dict[str, RuleSpec]:
    rules: dict[str, RuleSpec] = {}
    for i in range(RULES):
        company = tuple(rng.choice(companies))
        shape = rng.random()
        if shape < 0.6:
            spec = RuleSpec(all=(company, tuple(rng.choice(PROGRESS))), none=("@hedge",))
        elif shape < 0.75:
            spec = RuleSpec(all=(company, tuple(rng.choice(TOPICS))), any=("@setback",))
        elif shape < 0.9:
            spec = RuleSpec(
                all=(company,), any=tuple(rng.choice(PROGRESS)), fields=("title", "summary")
            )
        else:
            spec = RuleSpec(all=(company, (rng.choice(REGEXES),)))
        rules[f"m{i:04d}:{'progress' if shape < 0.75 else 'setback'}"] = spec
    return rules


def make_items(
    rng: random.Random, tracked: list[tuple[str, str]], others: list[tuple[str, str]], share: float
) -> list[dict[str, str]]:
    """News-like items; each company named is a tracked one with probability `share`."""
    words = [w.rstrip("*") for group in PROGRESS + TOPICS for w in group] + ALIASES["setback"]
    items = []
    for _ in range(ITEMS):
        names = [rng.choice(rng.choice(tracked if rng.random() < share else others)) for _ in "abc"]
        title = f"{names[0]}、{rng.choice(words)}へ　{rng.choice(FILLER_WORDS)}"
        parts: list[str] = []
        while sum(map(len, parts)) < rng.randint(280, 440):
            parts.append(rng.choice(FILLER_JA if rng.random() < 0.5 else FILLER_EN))
            if rng.random() < 0.3:
                parts.append(f"{rng.choice(names)} {rng.choice(words + FILLER_WORDS)}.")
        cut = len(parts) // 3
        items.append({"title": title, "summary": " ".join(parts[:cut]),
                      "content": "\n".join(parts[cut:])})  # fmt: skip
    return items


def _rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<44}{count / seconds:>12,.0f} items/s  ({count} items, {seconds:.2f} s)")


def _plain_all(
    rules: Mapping[str, RuleSpec], aliases: Mapping[str, Sequence[str]], doc: dict[str, str]
) -> list[Match]:
    found = (match_plain(rules[k], aliases, doc, key=k) for k in sorted(rules))
    return [m for m in found if m is not None]


def _timed(fn: Callable[[], list[list[Match]]]) -> tuple[list[list[Match]], float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _workload(label: str, matcher: Matcher, rules: dict[str, RuleSpec], items: Items) -> None:
    best, results = float("inf"), list[list[Match]]()
    for _ in range(3):
        results, seconds = _timed(lambda: [matcher.match(doc) for doc in items])
        best = min(best, seconds)
    _rate(f"{label}: Matcher.match, best of 3", len(items), best)
    plain, seconds = _timed(lambda: [_plain_all(rules, ALIASES, d) for d in items[:PLAIN_ITEMS]])
    _rate(f"{label}: match_plain, every rule", PLAIN_ITEMS, seconds)
    matched = sum(1 for r in results if r)
    print(f"{label + ': matches':<44}{sum(map(len, results)):>12,}  ({matched:,} items matched)")
    same = "yes" if plain == results[:PLAIN_ITEMS] else "NO"
    print(f"{label + ': identical to match_plain':<44}{same:>12}  (first {PLAIN_ITEMS} items)")


def run() -> None:
    rng = random.Random(SEED)
    taken = {name for pair in COMPANIES for name in pair}
    tracked = COMPANIES + _companies(rng, 220, taken, (SYLLABLES_EN, SYLLABLES_JA))
    others = _companies(rng, 400, taken, (OTHER_EN, OTHER_JA))
    rules = make_rules(rng, tracked)
    start = time.perf_counter()
    matcher = compile_matcher(rules, ALIASES)
    print(f"{'compile 1,000 rules':<44}{time.perf_counter() - start:>12.3f} s")
    news = make_items(rng, tracked, others, 0.1)
    dense = make_items(rng, tracked, others, 1.0)
    matcher.match(news[0])  # builds the lazy Unicode tables outside the timed loop
    _workload("news mix", matcher, rules, news)
    _workload("dense", matcher, rules, dense)


if __name__ == "__main__":
    run()
