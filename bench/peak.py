"""A process's own peak resident memory, for the benchmarks that measure it in a child process.

`getrusage(RUSAGE_SELF).ru_maxrss` keeps the peak across exec: Python starts a child with vfork,
so a child's figure is at least the parent's peak at the time (getrusage(2): "resource usage
metrics are preserved across an execve"). `make bench` runs every benchmark in one process, and
a child's row read the parent's 142 MiB where the child's own peak was 114. `VmHWM` in
/proc/self/status belongs to the memory the exec set up, so it is the child's alone.
"""

from __future__ import annotations

import re
import resource
from pathlib import Path

_HWM = re.compile(r"^VmHWM:\s+(\d+) kB$", re.MULTILINE)


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB since its exec (Linux); elsewhere
    `ru_maxrss`, which may include the parent's peak."""
    try:
        found = _HWM.search(Path("/proc/self/status").read_text())
    except OSError:
        found = None
    if found is not None:
        return int(found.group(1)) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
