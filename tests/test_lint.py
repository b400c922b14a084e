"""The code stays as `make lint` has it: ruff's checks, ruff's format (the package and the
benchmarks; the tests keep their own layout) and mypy --strict, at the versions pyproject pins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_finds_nothing() -> None:
    done = run("ruff", "check", "--no-cache", "monitor", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_and_the_benchmarks_are_formatted() -> None:
    done = run("ruff", "format", "--check", "--no-cache", "monitor", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_finds_nothing() -> None:
    done = run("mypy", "monitor")
    assert done.returncode == 0, done.stdout + done.stderr
