"""What every command shares: consoles, the error boundary, opening config and store.

Exit codes: 0 ok, 1 runtime failure, 2 configuration or usage error. Heavy modules are
imported inside the commands so that quick commands stay quick.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from monitor.errors import ConfigError, MonitorError, UsageError, WrongDatabaseError
from monitor.oneline import printable_line

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store import EventStore

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Watch news feeds for evidence that milestones happened, slipped or are overdue.",
)
alerts_app = typer.Typer(
    help="The alert outbox: pending, delivered and abandoned alerts.", invoke_without_command=True
)
app.add_typer(alerts_app, name="alerts")

# text, not a Path: pathlib would read `-c ''` as the current folder
ConfigOpt = Annotated[
    str, typer.Option("--config", "-c", envvar="MONITOR_CONFIG", help="configuration file")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON object per line")]
OperatorOpt = Annotated[str | None, typer.Option("--operator", help="who (default: $USER)")]


def operator_text(option: str, value: str) -> str:
    """An operator's words the log keeps for ever (`--reason`, `--operator`): one printable
    line, so no newline or terminal escape reaches whoever reads `monitor log`."""
    if not value.strip() or not value.isprintable():
        raise UsageError(f"{option}: give one line of printable text, not {value[:60]!r}")
    return value


def utf8_text(option: str, value: str) -> str:
    """A value looked up in the log, which holds only text: an argument's bytes that are not
    UTF-8 reach Python as lone surrogates ('\\udcff'), which no database driver can send."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise UsageError(
            f"{option} {value!r}: not UTF-8 text", hint="check the terminal's encoding"
        ) from None
    return value


def operator_name(given: str | None) -> str:
    """Who an operator's event names: `--operator`, else $USER, else the account's name."""
    if given:
        return operator_text("--operator", given)
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no USER, and a uid with no account (a container's, say)
        raise UsageError(
            "no operator name: $USER is not set", hint="pass --operator NAME"
        ) from None


class State:
    config_path: str = "feeds.toml"
    debug: bool = False


STATE = State()


@app.callback()
def _main(
    config: ConfigOpt = "feeds.toml",
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
) -> None:
    STATE.config_path, STATE.debug = config, debug


def fail(error: MonitorError) -> NoReturn:
    """The CLI's error boundary: one line per problem, a hint, the exit code."""
    lines = error.problems if isinstance(error, ConfigError) else [str(error)]
    for line in lines:  # one line each, whatever an argument it quotes holds (a newline, ESC)
        err.print(f"error: {escape(printable_line(line))}")
    if error.hint:
        err.print(f"hint: {escape(printable_line(error.hint))}")
    # a database that is not the log is the configuration's fault, as a bad feeds.toml is
    raise typer.Exit(2 if isinstance(error, ConfigError | UsageError | WrongDatabaseError) else 1)


@contextmanager
def boundary() -> Iterator[None]:
    """Errors as `error:` lines and exit codes; `--debug` adds the traceback, not another code."""
    try:
        yield
    except MonitorError as exc:
        _traceback()
        fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
        raise  # Typer's own signals; a closed pipe (`monitor log | head`) is Typer's to quiet
    except OSError as exc:  # a full disk, a closed terminal: the system's sentence is enough
        _traceback()
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"error: {escape(where)}{escape(exc.strerror or _first_line(exc))}")
        raise typer.Exit(1) from None
    except Exception as exc:  # noqa: BLE001 (the CLI boundary: a sentence, never a traceback)
        _traceback()
        err.print(f"error: unexpected {type(exc).__name__}: {escape(_first_line(exc))}")
        if not STATE.debug:
            err.print("hint: run again with --debug for the traceback, and report it")
        raise typer.Exit(1) from None


def _traceback() -> None:
    """Under `--debug`, the exception being handled, as Python prints it, to stderr."""
    if STATE.debug:
        import traceback

        traceback.print_exc()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"


def usage_failed(exc: typer.TyperException) -> int:
    """A bad option or argument, caught by Typer, as `error:` and `hint:` lines; the exit code."""
    from typer._click.exceptions import NoArgsIsHelpError  # Typer vendors Click privately

    if isinstance(exc, NoArgsIsHelpError):  # a bare `monitor`: the help is the answer
        exc.show()
        return exc.exit_code
    message = exc.format_message().strip().splitlines() or ["bad command line"]
    err.print(f"error: {escape(printable_line(message[0]))}")
    ctx = getattr(exc, "ctx", None)  # None when the parser stopped before a command's context
    err.print(f"hint: see `{escape(ctx.command_path if ctx is not None else 'monitor')} --help`")
    return exc.exit_code


def load() -> Config:
    from monitor.config import load_config

    return load_config(STATE.config_path, os.environ)


@contextmanager
def opened(*, read_only: bool = False) -> Iterator[tuple[Config, EventStore]]:
    """The configuration and its log; `read_only` for commands that only read, so that they
    also work on a copy of the log this user cannot write (an auditor's)."""
    from monitor.runtime import open_store

    config = load()
    store = open_store(config, read_only=read_only)
    try:
        yield config, store
    finally:
        store.close()


def print_json(obj: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj, default=str) + b"\n")


def command(fn: Callable[..., None]) -> Callable[..., None]:
    """Run a command inside the error boundary; it also takes the global options."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with boundary():
            fn(*args, **_globals_applied(kwargs))

    return _with_globals(fn, wrapper)


def takes_globals(fn: Callable[..., None]) -> Callable[..., None]:
    """A group's callback that also takes the global options (`monitor alerts -c PATH`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        fn(*args, **_globals_applied(kwargs))

    return _with_globals(fn, wrapper)


# `--config` and `--debug` after the command as well as before it (`monitor run -c PATH`):
# DESIGN.md has every command take them. The command's own wins; MONITOR_CONFIG is read once,
# by the option before the command.
_GLOBALS: dict[str, tuple[Any, Any]] = {
    "config_": (
        Annotated[str | None, typer.Option("--config", "-c", help="configuration file")],
        None,
    ),
    "debug_": (Annotated[bool, typer.Option("--debug", help="show tracebacks")], False),
}


def _globals_applied(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` without the global options, which are set in STATE when given."""
    config, debug = kwargs.pop("config_", None), kwargs.pop("debug_", False)
    if config is not None:
        STATE.config_path = config
    STATE.debug = STATE.debug or debug
    return kwargs


def _with_globals(fn: Callable[..., None], wrapper: Callable[..., None]) -> Callable[..., None]:
    """`wrapper` with `fn`'s parameters and the global options, as Typer reads a signature."""
    signature = inspect.signature(fn, eval_str=True)  # Typer reads options off annotations
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint)
        for name, (hint, default) in _GLOBALS.items()
    ]
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *extra]
    )
    wrapper.__annotations__ = {**fn.__annotations__, **{n: h for n, (h, _) in _GLOBALS.items()}}
    return wrapper
