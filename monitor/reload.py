"""A changed feeds.toml read again: the configuration to apply, or why the old one keeps running."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from monitor.config import Config, load_config
from monitor.errors import ConfigError

log = logging.getLogger("monitor.daemon")  # the daemon reloads: its log lines keep its name

Stamp = tuple[float, int]  # the file's modification time and size


def config_stamp(config: Config) -> Stamp | None:
    """What tells the watcher the file changed; None if it cannot be read now."""
    try:
        st = Path(config.path).stat()
    except OSError:
        return None
    return (st.st_mtime, st.st_size)


def reloaded(current: Config, env: Mapping[str, str], why: str) -> Config | None:
    """The file's new configuration, or None if it is unchanged or refused (logged here).

    The database and the log format stay the ones set up at start-up: a new `database_url` or
    `log_format` is logged and kept for the next start.
    """
    try:
        new = load_config(Path(current.path), env)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("reload (%s) refused: %s", why, problem)
        log.error("the previous configuration keeps running")
        return None
    if not new.feeds:  # an editor caught mid-save, most likely: never drop every feed
        log.error("reload (%s) refused: %s has no [[feeds]]", why, new.path)
        log.error("the previous configuration keeps running")
        return None
    if new.sha256 == current.sha256:
        return None
    # the log opened at start-up and the log handler set up then stay until the next start
    kept = {
        "database_url": current.settings.database_url,
        "log_format": current.settings.log_format,
    }
    for name, value in kept.items():
        if getattr(new.settings, name) != value:
            log.warning("%s changed: takes effect at the next start", name)
    return new.model_copy(update={"settings": new.settings.model_copy(update=kept)})
