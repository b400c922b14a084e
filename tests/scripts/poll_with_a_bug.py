"""`monitor` with a bug planted in the fetcher: fetching any URL ending in /bug.xml raises."""

from __future__ import annotations

from typing import Any

from monitor.cli import main
from monitor.fetch import Fetcher

_real = Fetcher.fetch


async def _fetch(self: Fetcher, url: str, **kwargs: Any) -> Any:
    if url.endswith("/bug.xml"):
        raise RuntimeError("a planted bug")
    return await _real(self, url, **kwargs)


if __name__ == "__main__":
    Fetcher.fetch = _fetch  # type: ignore[method-assign]
    main()
