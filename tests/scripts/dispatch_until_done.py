"""A dispatcher process for the shared-PostgreSQL test: deliver until nothing is pending."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from monitor import deliver
from monitor.config import load_config, secrets_for
from monitor.fetch import guarded_client
from monitor.runtime import instance_name, open_store


async def main(path: Path) -> None:
    config = load_config(path, os.environ)
    store = open_store(config)
    async with guarded_client(allow_private=True, timeout=30, user_agent="t") as client:
        d = deliver.Dispatcher(config, store, secrets_for(config, os.environ), client,
                               instance_name())
        idle = 0
        while idle < 3:
            outcomes = await deliver.deliver_due(d, limit=25)
            idle = idle + 1 if not outcomes else 0
            if not outcomes:
                await asyncio.sleep(0.2)
    store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
