"""The exception tree: every error the monitor raises on purpose.

    MonitorError                      base; message built from fields, optional one-line hint
    ├── ConfigError                   feeds.toml or MONITOR_* is wrong; carries every problem
    ├── UsageError                    a command-line argument is wrong
    ├── StoreError                    the event log refused or failed an operation
    │   ├── WrongDatabaseError        database_url names no event log this command can use
    │   ├── ConflictError             expected stream version is stale; nothing was written
    │   └── AppendOnlyError           an UPDATE or DELETE on the log was attempted
    ├── FetchError                    a feed could not be fetched; kind + sentence
    ├── ParseError                    a body is not a feed we accept; kind + sentence
    └── DeliveryError                 an alert could not be delivered; kind, permanent, retry_after

Imports nothing from monitor. Messages start with their subject, lowercase, no final period.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every deliberate error; `hint` is one imperative sentence or None."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(MonitorError):
    """The configuration has one or more problems; all of them are listed."""

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class UsageError(MonitorError):
    """A command-line argument is wrong."""


class StoreError(MonitorError):
    """The event log refused or failed an operation."""


class WrongDatabaseError(StoreError):
    """The configured database is not a monitor event log (another program's database, a file
    that is not SQLite or not a file, a path that does not exist): the configuration is wrong,
    as with a ConfigError, and the command line exits 2. A log that is there but cannot be
    read or written now (a permission, a server down) is a plain StoreError (exit 1)."""


class ConflictError(StoreError):
    """An append expected a stream version that is no longer current."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        self.stream, self.expected, self.actual = stream, expected, actual
        super().__init__(
            f"stream '{stream}': expected version {expected}, found {actual}",
            hint="read the stream again and retry the decision",
        )


class AppendOnlyError(StoreError):
    """The database refused to change or remove a recorded event."""


class FetchError(MonitorError):
    """A feed fetch failed; `kind` names the failure for events and metrics."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.kind, self.status, self.retry_after = kind, status, retry_after
        super().__init__(message, hint=hint)


class ParseError(MonitorError):
    """A body is not a feed we accept (`not_a_feed`, `rejected_entities`)."""

    def __init__(self, kind: str, message: str, *, hint: str | None = None) -> None:
        self.kind = kind
        super().__init__(message, hint=hint)


class DeliveryError(MonitorError):
    """An alert attempt failed; permanent errors are not retried."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        disable_channel: bool = False,
        response: str | None = None,
    ) -> None:
        self.kind, self.permanent, self.retry_after = kind, permanent, retry_after
        self.disable_channel, self.response = disable_channel, response
        super().__init__(message)
