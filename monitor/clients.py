"""The HTTP clients of one configuration, and the poller and dispatcher that use them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from monitor import deliver, poll
from monitor.config import Config, available_secrets
from monitor.fetch import Fetcher, FetchLimits, guarded_client
from monitor.store import EventStore


def fetch_limits(config: Config) -> FetchLimits:
    """The fetcher's limits, from the settings."""
    s = config.settings
    return FetchLimits(
        deadline=s.fetch_timeout.total_seconds(),
        max_bytes=s.max_feed_bytes,
        max_redirects=s.max_redirects,
        allow_private=s.allow_private_networks,
        user_agent=s.user_agent,
        concurrency=s.concurrency,
        per_host=s.per_host_concurrency,
    )


@dataclass(frozen=True, slots=True)
class Clients:
    """Opened together for a configuration; a reload opens new ones and closes these later."""

    fetcher: Fetcher
    client: httpx.AsyncClient  # the webhooks'
    poller: poll.Poller
    dispatcher: deliver.Dispatcher

    @classmethod
    async def open(
        cls, config: Config, store: EventStore, env: Mapping[str, str], instance: str
    ) -> Clients:
        limits = fetch_limits(config)
        fetcher = await Fetcher(limits).__aenter__()
        client = guarded_client(
            allow_private=limits.allow_private, timeout=30.0, user_agent=limits.user_agent
        )
        poller = poll.poller_for(config, store, fetcher, instance)
        poller.defer_unchanged = True
        dispatcher = deliver.Dispatcher(
            config, store, available_secrets(config, env), client, instance
        )
        return cls(fetcher, client, poller, dispatcher)

    async def close(self) -> None:
        await self.fetcher.__aexit__(None, None, None)
        await self.client.aclose()
        await asyncio.to_thread(self.poller.close)

    async def close_later(self, delay: float) -> None:
        """Once the polls and sends started before a reload are done: the polls' deferred
        writes, then the clients; at once when cancelled (the daemon stops, its in-flight work
        done or abandoned). `delay`, a lease, lets a tick that took these clients just before
        the reload start its work on them (a tick takes them once its claims return, so a claim
        that waits longer starts its work on the new clients); a poll still parsing a long body
        after it, or fetching under a longer fetch_timeout, is waited for (its recording needs
        the writer), and so is an alert still being sent (a slow receiver needs the webhook
        client)."""
        try:
            await poll.flush_unchanged(self.poller)
            await asyncio.sleep(delay)
            await self.poller.idle.wait()
            await self.dispatcher.idle.wait()
        finally:
            await poll.flush_unchanged(self.poller)
            await self.close()
