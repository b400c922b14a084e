"""The command line: the only package that prints or picks an exit code.

Exit codes: 0 ok, 1 runtime failure, 2 configuration or usage error. Every listing has
`--json` (one object per line).
"""

from __future__ import annotations

import typer

from monitor.cli import alerts, logs, ops, status  # noqa: F401  (each registers its commands)
from monitor.cli.common import app, usage_failed


def main() -> None:
    """Run the command line; usage errors print like every other error (`error:`, exit 2)."""
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # Click's usage errors, before any command ran
        code = usage_failed(exc)
    except typer.Abort:
        code = 1
    except KeyboardInterrupt:  # Ctrl-C outside a command's boundary (while Typer parses)
        code = 130
    raise SystemExit(code if isinstance(code, int) else 0)
