"""Crash points for the crash-safety tests: `MONITOR_CRASH_AT=<name>` kills the process there.

A real SIGKILL at a named step is the only way to prove that a crash between two steps loses
nothing and doubles nothing; unset, each point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    """Die at once, without cleanup, if this is the step the environment names."""
    if os.environ.get("MONITOR_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
