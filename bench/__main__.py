"""`make bench`: every benchmark in one run, each printing the figures its issue names."""

from __future__ import annotations

import importlib
import sys
import time

MODULES = (
    "bench_store",
    "bench_reads",
    "bench_match",
    "rules_quality",
    "bench_fetch",
    "bench_poll",
    "bench_firstpoll",
)


def main(names: list[str]) -> None:
    chosen = [n for n in MODULES if not names or n in names or n.removeprefix("bench_") in names]
    for name in chosen:
        print(f"\n== {name} ==", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        module.run()
        print(f"({name} took {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
