"""feeds.toml and the MONITOR_* environment → a frozen, validated Config; the only reader of either.

    load_config(path, env)     read and validate the file; every problem in one ConfigError
    check_secrets(config, env) every channel secret variable set and well-formed
    secrets_for(config, env)   channel id → secret; available_secrets: the ones that are set
    secret_values(config, env) every value the channels' variables hold (for log scrubbing)
    short_secrets(config, env) a warning for each secret too short to scrub inside words
    redacted(config)           the effective configuration for `monitor check`, secrets hidden

Settings enter at the entry points and are passed down; there is no global configuration.
"""

from monitor.config.load import DATABASE_URL_ENV, load_config, resolve_sqlite_path
from monitor.config.models import (
    Baseline,
    Channel,
    Config,
    ConfigFile,
    Confirm,
    EmailChannel,
    Feed,
    Milestone,
    Rule,
    Settings,
    WebhookChannel,
)
from monitor.config.secrets import (
    available_secrets,
    check_secrets,
    secret_problems,
    secret_values,
    secrets_for,
    short_secrets,
)
from monitor.config.values import (
    CREDENTIALS,
    DEFAULT_DATABASE_URL,
    DEFAULT_RETRY_SCHEDULE,
    check_http_url,
    check_public_url,
    format_duration,
    parse_duration,
)
from monitor.config.view import redacted

__all__ = [
    "CREDENTIALS",
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_RETRY_SCHEDULE",
    "Baseline",
    "Channel",
    "Config",
    "ConfigFile",
    "Confirm",
    "EmailChannel",
    "Feed",
    "Milestone",
    "Rule",
    "Settings",
    "WebhookChannel",
    "available_secrets",
    "check_http_url",
    "check_public_url",
    "check_secrets",
    "format_duration",
    "load_config",
    "parse_duration",
    "redacted",
    "resolve_sqlite_path",
    "secret_problems",
    "secret_values",
    "secrets_for",
    "short_secrets",
]
