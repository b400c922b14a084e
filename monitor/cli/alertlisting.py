"""`monitor alerts` laid out for a terminal of any width."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text

from monitor.oneline import counted


class AlertListing:
    """`monitor alerts` for a terminal of any width: one line per alert where everything fits
    beside the subject and the last error, else a few lines per alert (80 columns).

    `alerts retry ID` takes the id from here: it is never cut. The subject is cut to one line
    (its end marked `…`); the last error wraps, as it says what to fix.
    """

    MIN_TEXT = 30  # the table needs this much for each of subject and last error

    def __init__(self, rows: list[dict[str, Any]], timezone: str) -> None:
        from monitor.review import local

        self.alerts = [
            {
                "alert": r["alert_id"],
                "channel": r["channel_id"],
                "status": r["status"],
                "attempts": int(r["attempts"]),
                "next": local(r.get("due_at"), timezone),
                "subject": r["subject"] if len(r["subject"]) <= 60 else r["subject"][:59] + "…",
                # a delivered alert's earlier failures are in the log, not a problem now
                "error": "" if r["status"] == "delivered" else r.get("last_error") or "",
            }
            for r in rows
        ]

    def widest(self, key: str, heading: str = "") -> int:
        """The cells the column's widest value takes (a CJK character takes two)."""
        return max([cell_len(heading), *(cell_len(str(a[key])) for a in self.alerts)])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.alerts:
            yield Text("no alerts")
            return
        fixed = (
            self.widest("alert", "alert")
            + self.widest("channel", "channel")
            + self.widest("status", "status")
            + len("attempts")
            + self.widest("next", "next attempt")
        )
        room = options.max_width - fixed - 2 * 6  # six gaps of two between seven columns
        if room >= 2 * self.MIN_TEXT:
            yield self._table(subject=min(self.widest("subject", "subject"), room - self.MIN_TEXT))
        else:
            yield from self._blocks(options.max_width)

    def _table(self, *, subject: int) -> Table:
        """One line per alert, but for a long last error; the subject whole where it fits."""
        table = Table(
            Column("alert", no_wrap=True),
            Column("channel", no_wrap=True),
            Column("status", no_wrap=True),
            Column("attempts", justify="right", no_wrap=True),
            Column("next attempt", no_wrap=True),
            Column("subject", width=subject),
            Column("last error", overflow="fold"),  # the rest of the line, and more lines
            box=None,
            pad_edge=False,
        )
        for a in self.alerts:
            table.add_row(
                *map(Text, (a["alert"], a["channel"], a["status"], str(a["attempts"]), a["next"])),
                Text(a["subject"], no_wrap=True, overflow="ellipsis"),
                Text(a["error"]),
            )
        return table

    def _blocks(self, width: int) -> Iterator[RenderableType]:
        channel = min(self.widest("channel"), max(width // 4, 8))
        for n, a in enumerate(self.alerts):
            if n:
                yield Text("")
            head = Table.grid(
                Column(no_wrap=True),
                Column(min_width=channel, overflow="fold"),
                Column(no_wrap=True, min_width=len("abandoned")),
                Column(no_wrap=True),
                padding=(0, 2),
            )
            head.add_row(
                *map(Text, (a["alert"], a["channel"], a["status"])),
                counted(a["attempts"], "attempt"),
            )
            yield head
            details = Table.grid(
                Column(no_wrap=True, min_width=len("next attempt")),
                Column(overflow="fold"),
                padding=(0, 2),
            )
            if a["status"] == "pending":
                details.add_row("next attempt", Text(a["next"]))
            details.add_row("subject", Text(a["subject"], no_wrap=True, overflow="ellipsis"))
            if a["error"]:
                details.add_row("last error", Text(a["error"]))
            yield Padding(details, (0, 0, 0, 2), expand=False)
