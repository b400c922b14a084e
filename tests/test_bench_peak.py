"""The benchmarks' peak RSS of a child process is the child's own, not its parent's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.peak import peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
CHILD = "from bench.peak import peak_rss_mib; x = bytearray({mib} * 2**20); print(peak_rss_mib())"


def _child_peak(mib: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(mib=mib)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return float(done.stdout)


def test_a_child_reports_its_own_peak_below_a_larger_parent_peak() -> None:
    ballast = bytearray(400 * 2**20)  # zero pages are not resident until written
    for offset in range(0, len(ballast), 4096):
        ballast[offset] = 1
    assert peak_rss_mib() >= 400
    small, large = _child_peak(1), _child_peak(120)
    # ru_maxrss would read the parent's 400+ MiB in both (kept across vfork and exec)
    assert small < 100
    assert 120 <= large < 300
    del ballast
