"""The command line: the only package that prints or picks an exit code.

Exit codes: 0 ok, 1 runtime failure, 2 configuration or usage error. Every listing has
`--json` (one object per line).
"""

from __future__ import annotations

from monitor.cli import alerts, logs, ops, status  # noqa: F401  (each registers its commands)
from monitor.cli.common import app


def main() -> None:
    app()
