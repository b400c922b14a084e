"""Channel secrets from the environment: checked at start-up, handed to channels, never shown."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from monitor.config.models import Config, EmailChannel
from monitor.errors import ConfigError
from monitor.redact import SHORT_SECRET

WEBHOOK_PREFIX = "whsec_"


def check_secrets(config: Config, env: Mapping[str, str]) -> None:
    """Raise ConfigError naming every channel secret variable that is unset or malformed."""
    problems = secret_problems(config, env)
    if problems:
        raise ConfigError(
            problems, hint="set each variable named above in the daemon's environment"
        )


def secret_problems(config: Config, env: Mapping[str, str]) -> list[str]:
    """Every channel secret variable that is unset or malformed, one line each."""
    problems: list[str] = []
    for i, channel in enumerate(config.channels):
        key = "password_env" if isinstance(channel, EmailChannel) else "secret_env"
        variable = channel.password_env if isinstance(channel, EmailChannel) else channel.secret_env
        if variable is None:
            continue
        where = f"{config.path}: channels[{i}].{key}"
        value = env.get(variable)
        if value is None:
            problems.append(f"{where}: environment variable {variable} is not set")
        elif not value.strip():
            problems.append(f"{where}: environment variable {variable} is set but empty")
        elif key == "secret_env":
            problems.extend(f"{where}: {variable}: {p}" for p in _webhook_secret_problems(value))
    return problems


def short_secrets(config: Config, env: Mapping[str, str]) -> list[str]:
    """A warning for each channel whose secret is shorter than `SHORT_SECRET`: logs and
    events scrub it only where it stands alone, so a word holding it keeps it. Never quotes
    the secret, nor says how long it is."""
    warnings: list[str] = []
    for i, channel in enumerate(config.channels):
        email = isinstance(channel, EmailChannel)
        key = "password_env" if email else "secret_env"
        variable = channel.password_env if isinstance(channel, EmailChannel) else channel.secret_env
        value = env.get(variable, "") if variable is not None else ""
        secrets = ([value.strip()] if email else value.split()) if value.strip() else []
        if any(len(secret) < SHORT_SECRET for secret in secrets):
            warnings.append(
                f"{config.path}: channels[{i}].{key}: {variable} holds a secret shorter than "
                f"{SHORT_SECRET} characters, which logs hide only where it stands alone (not "
                "inside a longer word); use a longer one"
            )
    return warnings


def secrets_for(config: Config, env: Mapping[str, str]) -> dict[str, str]:
    """Channel id → its secret: the SMTP password, or the space-separated whsec_ list."""
    check_secrets(config, env)
    return available_secrets(config, env)


def secret_values(config: Config, env: Mapping[str, str]) -> list[str]:
    """Every value the channels' *_env variables hold, well formed or not: what logs scrub."""
    names = [
        c.password_env if isinstance(c, EmailChannel) else c.secret_env for c in config.channels
    ]
    return [env[n] for n in names if n and env.get(n)]


def available_secrets(config: Config, env: Mapping[str, str]) -> dict[str, str]:
    """The secrets that are set and well formed; channels missing theirs are left out.

    The daemon starts without them and holds those channels' alerts (`monitor.deliver`), so
    a fresh checkout runs; `monitor check` still refuses.
    """
    found: dict[str, str] = {}
    for channel in config.channels:
        variable = channel.password_env if isinstance(channel, EmailChannel) else channel.secret_env
        value = env.get(variable, "") if variable is not None else ""
        if not value.strip():
            continue
        if isinstance(channel, EmailChannel):
            found[channel.id] = value
        elif not _webhook_secret_problems(value):
            found[channel.id] = " ".join(value.split())
    return found


def _webhook_secret_problems(value: str) -> list[str]:
    """What is wrong with a rotation list of Standard Webhooks secrets; never quotes them."""
    problems = []
    for n, secret in enumerate(value.split(), start=1):
        if not secret.startswith(WEBHOOK_PREFIX):
            problems.append(f"secret {n} does not start with '{WEBHOOK_PREFIX}'")
            continue
        try:
            key = base64.b64decode(secret[len(WEBHOOK_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"secret {n} is not base64 after '{WEBHOOK_PREFIX}'")
            continue
        if not key:
            problems.append(f"secret {n} has no key after '{WEBHOOK_PREFIX}'")
    return problems
