"""The configuration's frozen pydantic models: settings, feeds, channels, rules, milestones."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.config.values import (
    DEFAULT_DATABASE_URL,
    DEFAULT_RETRY_SCHEDULE,
    ID_PATTERN,
    ChannelTimeout,
    Count,
    Day,
    Domain,
    Duration,
    Email,
    EnvName,
    HeaderText,
    Host,
    HttpUrl,
    Id,
    NonEmpty,
    PublicUrl,
    RetrySchedule,
    Term,
    Terms,
    check_database_url,
    timezone_name,
)


class Model(BaseModel):
    """Base of every configuration model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Settings(Model):
    """Daemon-wide settings ([settings])."""

    database_url: Annotated[StrictStr, AfterValidator(check_database_url)] = DEFAULT_DATABASE_URL
    poll_interval: Duration = timedelta(minutes=30)
    allow_private_networks: StrictBool = False
    user_agent: HeaderText = "milestone-monitor/0.1 (+https://example.org/milestone-monitor)"
    timezone: Annotated[StrictStr, AfterValidator(timezone_name)] = "Asia/Tokyo"
    fetch_timeout: Duration = timedelta(seconds=20)
    max_feed_bytes: Count = 15 * 1024 * 1024
    max_feed_items: Count = 1000
    max_redirects: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] = 5  # as a Count
    concurrency: Count = 20
    per_host_concurrency: Count = 2
    backoff_ceiling: Duration = timedelta(hours=6)
    deadline_check_interval: Duration = timedelta(hours=1)
    tick: Duration = timedelta(seconds=5)
    startup_spread: Duration = timedelta(seconds=60)
    log_format: Literal["text", "json"] = "text"


class Feed(Model):
    """One feed to poll ([[feeds]])."""

    id: Id
    url: HttpUrl
    interval: Duration | None = None
    stale_after: Duration | None = None
    title: NonEmpty | None = None
    enabled: StrictBool = True

    def effective_interval(self, settings: Settings) -> timedelta:
        """This feed's own interval, else the settings' poll interval."""
        return self.interval if self.interval is not None else settings.poll_interval


class EmailChannel(Model):
    """Alerts by SMTP ([[channels]] with type = "email")."""

    id: Id
    type: Literal["email"]
    host: Host
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 587
    # allow_insecure comes before security so that security's check can see it
    allow_insecure: StrictBool = False
    security: Literal["starttls", "tls", "none"] = Field(default="starttls", validate_default=True)
    username: NonEmpty | None = None
    password_env: EnvName | None = None
    sender: Email
    recipients: Annotated[tuple[Email, ...], Field(min_length=1)]
    timeout: ChannelTimeout = timedelta(seconds=30)
    retry_schedule: RetrySchedule = DEFAULT_RETRY_SCHEDULE

    # Field validators rather than a model validator: they still run, and report, when
    # another key of the same channel is wrong.
    @field_validator("security")
    @classmethod
    def _encrypted_unless_allowed(cls, security: str, info: ValidationInfo) -> str:
        if security == "none" and not info.data.get("allow_insecure", False):
            raise ValueError(
                '"none" sends mail and credentials unencrypted; '
                "set allow_insecure = true to accept that"
            )
        return security

    @field_validator("password_env")
    @classmethod
    def _login_needs_username(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None and info.data.get("username") is None and "username" in info.data:
            raise ValueError("password_env is set but username is not; SMTP login needs both")
        return name


class WebhookChannel(Model):
    """Alerts as signed Standard Webhooks ([[channels]] with type = "webhook")."""

    id: Id
    type: Literal["webhook"]
    url: HttpUrl
    secret_env: EnvName
    timeout: ChannelTimeout = timedelta(seconds=15)
    retry_schedule: RetrySchedule = DEFAULT_RETRY_SCHEDULE


Channel = Annotated[EmailChannel | WebhookChannel, Field(discriminator="type")]


class Rule(Model):
    """Term groups that must all match, alternatives, vetoes, and the fields searched."""

    all: tuple[Terms, ...] = ()
    any: tuple[Term, ...] = ()
    none: tuple[Term, ...] = ()
    fields: Annotated[tuple[Literal["title", "summary", "content"], ...], Field(min_length=1)] = (
        "title",
        "summary",
        "content",
    )

    @model_validator(mode="after")
    def _matches_something(self) -> Rule:
        if not self.all and not self.any:
            raise ValueError("a rule needs at least one of all or any")
        return self


class Confirm(Model):
    """When evidence confirms a milestone: distinct publishers within a window, or one authority."""

    publishers: Count = 2
    within: Duration = timedelta(days=14)
    authoritative: tuple[Domain, ...] = ()


class Baseline(Model):
    """What is already known about a milestone when monitoring starts."""

    status: Literal["reported", "confirmed", "at_risk", "overdue"]
    since: Day
    source: PublicUrl
    reason: StrictStr = ""


class Milestone(Model):
    """A real-world milestone, its rules and its confirmation policy ([[milestones]])."""

    id: Id
    title: NonEmpty
    expected_by: Day | None = None
    notify: tuple[Id, ...] = ()
    match: Rule
    setback: tuple[Rule, ...] = ()
    confirm: Confirm = Confirm()
    baseline: Baseline | None = None


Aliases = dict[Annotated[StrictStr, Field(pattern=ID_PATTERN)], Terms]


class ConfigFile(Model):
    """The shape of feeds.toml itself, before the loader adds where it came from."""

    settings: Settings = Settings()
    feeds: tuple[Feed, ...] = ()
    channels: tuple[Channel, ...] = ()
    aliases: Aliases = {}
    milestones: tuple[Milestone, ...] = ()


class Config(Model):
    """The validated configuration, with the file it came from and that file's sha256."""

    path: Path
    sha256: str
    settings: Settings = Settings()
    feeds: tuple[Feed, ...] = ()
    channels: tuple[Channel, ...] = ()
    aliases: Aliases = {}
    milestones: tuple[Milestone, ...] = ()

    @cached_property
    def lookups(self) -> dict[str, tuple[object, dict[str, Any]]]:
        """kind -> (the tuple indexed, id -> entry), filled as entries are looked up and
        rebuilt when model_copy swaps the tuple. A plain attribute once made: a private one
        costs pydantic's lookup, a few microseconds at every poll."""
        return {}

    def _lookup(self, kind: str, entries: tuple[Any, ...], id: str) -> Any:
        cached = self.lookups.get(kind)
        if cached is None or cached[0] is not entries:
            cached = (entries, {entry.id: entry for entry in entries})
            self.lookups[kind] = cached
        try:
            return cached[1][id]
        except KeyError:
            raise KeyError(f"no {kind} with id {id!r} in {self.path}") from None

    def feed(self, id: str) -> Feed:
        """The feed with this id; KeyError if there is none."""
        found: Feed = self._lookup("feed", self.feeds, id)
        return found

    def channel(self, id: str) -> EmailChannel | WebhookChannel:
        """The channel with this id; KeyError if there is none."""
        found: EmailChannel | WebhookChannel = self._lookup("channel", self.channels, id)
        return found

    def milestone(self, id: str) -> Milestone:
        """The milestone with this id; KeyError if there is none."""
        found: Milestone = self._lookup("milestone", self.milestones, id)
        return found
