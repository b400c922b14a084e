"""Which parts of a web URL's path are secrets: webhook tokens, by place or by look (pure).

Some services put the credential in the path, where no parameter name announces it:

    https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX    the last segment
    https://discord.com/api/webhooks/123456789/abcDEF-123…                 the one after the id
    https://hooks.example.com/hook/9f3c…e1a2.json (any host)               what looks random

These two services' tokens are known by place, whatever they hold. Elsewhere a run of token
characters (letters, digits, `-`, `_`, `:`, a trailing `=`) is taken for a token when it is at
least 20 long and looks random: a UUID, a run of 16 or more hexadecimal digits mixing digits
and letters, or three signs of a random string (`_SIGNS`) in runs of letters and digits that
show two or more each. Measured on 500,000 hash-made tokens of each kind: hexadecimal ones
and UUIDs are caught by their digits; of 32 bytes in base62 (43 characters) all were caught,
in base64url all but 6; at 24 characters about 1 in 250 base64url and 1 in 20 lower-case
base32 tokens read as words and are missed. Words, numbers, dates, slugs and file names
(`/news/2026/11/rss.xml`, `/2026-11-29-noetra-begins-training`, `/GoogleOnlineSecurityBlog`)
show none or few, so ordinary feed paths are left alone; a name mixing cases oddly
(`newsUPDATEworldUPDATE`) may not be. A short token (Zapier's six characters) or one that
happens to read like words cannot be told from a path and is left.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# a percent-escape is one character of the path, never the start of a token (%2F1033…)
_TOKEN_RUN = re.compile(r"%[0-9A-Fa-f]{2}|[A-Za-z0-9_:-]+={0,2}")
_CANDIDATE = re.compile(r"[A-Za-z0-9_:-]{20,}={0,2}")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
# Signs of a random string, counted inside each run of letters and digits.
_SIGNS = (
    re.compile(r"(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])"),  # a letter beside a digit: k4G
    # a capital that starts no word (xXk, aBC) or one lower-case letter between capitals (GeU)
    re.compile(r"[a-z](?=[A-Z](?![a-z]{2}))|(?<=[A-Z])[a-z](?=[A-Z0-9])"),
    # four capital consonants in a row (base32: JBSWY); lower-case words joined without a
    # separator meet that way too often (worldnewsfrontpage)
    re.compile(r"[B-DF-HJ-NP-TV-XZ]{4,}"),
)
_ENOUGH_SIGNS = 3
_UUID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)
# 16 or more hexadecimal digits, one case, holding both a digit and a letter
_HEX_RUN = re.compile(
    r"(?=[0-9]*[a-f])(?=[a-f]*[0-9])[0-9a-f]{16,}|(?=[0-9]*[A-F])(?=[A-F]*[0-9])[0-9A-F]{16,}"
)
_DISCORD = ("discord.com", "discordapp.com")


def redact_path(path: str, host: str, *, mask: str) -> str:
    """`path` with each secret replaced by `mask`: a known service's token segment whole, and
    elsewhere every run of token characters that looks random (`/hook/<mask>.json`); `host`
    is the URL's host name."""
    segments = path.split("/")
    token = _known_token(host.rstrip(".").lower(), segments)
    return "/".join(
        mask if i == token else _TOKEN_RUN.sub(lambda run: _masked(run[0], mask), segment)
        for i, segment in enumerate(segments)
    )


def _masked(run: str, mask: str) -> str:
    return mask if not run.startswith("%") and looks_random(run) else run


def looks_random(text: str) -> bool:
    """Whether a run of token characters looks generated rather than a word, number or name."""
    if not _CANDIDATE.fullmatch(text):
        return False
    if _UUID.fullmatch(text):
        return True
    runs = _ALNUM_RUN.findall(text)
    if any(_HEX_RUN.fullmatch(run) for run in runs):
        return True
    # A slug's words (covid19, n97, v101) may show a sign each; a token's runs show several.
    shown = (sum(len(sign.findall(run)) for sign in _SIGNS) for run in runs)
    return sum(signs for signs in shown if signs >= 2) >= _ENOUGH_SIGNS


def _known_token(host: str, segments: Sequence[str]) -> int | None:
    """The index of the token segment of a Slack or Discord webhook's path (`segments[0]` is
    the empty string before the leading slash)."""
    named = [i for i, segment in enumerate(segments) if segment]
    # hooks.slack.com/services/T…/B…/TOKEN, /workflows/T…/A…/ID/TOKEN, /triggers/T…/ID/TOKEN
    if host in ("hooks.slack.com", "hooks.slack-gov.com") and len(named) >= 3:
        return named[-1]
    # discord.com/api[/v10]/webhooks/ID/TOKEN[/slack]; also ptb., canary. and discordapp.com
    if host in _DISCORD or host.split(".", 1)[-1] in _DISCORD:
        for i, segment in enumerate(segments[:-2]):
            if segment.lower() == "webhooks" and segments[i + 2]:
                return i + 2
    return None
