"""Abuse limits ("10 logins per phone per 15 minutes") on a moving window.

A moving window, unlike a fixed one, cannot be beaten by bursting at a window edge
(twice the amount in a moment). Counters live in process memory on a single node and in
Redis when nodes are replicated, so every node enforces the same budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import BlockingConnectionPool, ConnectionPool

__all__ = ["Limit", "RateLimited", "RateLimiter"]

POOL_SIZE = 64  # connections per process; a hit holds one for a single round trip
POOL_WAIT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `amount` hits per key in any `per_seconds` long stretch of time."""

    name: str
    amount: int
    per_seconds: int

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"limit names are non-empty and have no '/': {self.name!r}")
        if self.amount < 1 or self.per_seconds < 1:
            raise ValueError("a limit allows at least one hit per at least one second")


class RateLimited(Exception):  # noqa: N818 - reads as the domain term
    """Over a limit; `retry_after` is how many seconds (at least 1) to wait."""

    def __init__(self, limit: Limit, retry_after: int) -> None:
        super().__init__(f"rate limited by {limit.name}; retry after {retry_after}s")
        self.limit = limit
        self.retry_after = retry_after


def _redis_storage(redis_url: str, prefix: str) -> tuple[Storage, ConnectionPool]:
    # We own the pool so close() can release its connections; limits has no close. It is a
    # blocking pool: when every connection is busy, a hit waits for one (up to the timeout)
    # instead of failing, so a burst of requests is slowed, never turned into 500s.
    pool: ConnectionPool = BlockingConnectionPool.from_url(
        redis_url, max_connections=POOL_SIZE, timeout=POOL_WAIT_SECONDS
    )
    options: dict[str, Any] = {"connection_pool": pool}
    # limits defaults to the coredis client; we use redis-py, which OMO already needs.
    storage = RedisStorage(
        "async+" + redis_url.replace("unix://", "redis+unix://", 1),
        implementation="redispy",
        key_prefix=f"{prefix}ratelimit",
        **options,
    )
    return storage, pool


class RateLimiter:
    """Counts hits per (limit, key) in memory, or in Redis when a URL is given."""

    def __init__(self, redis_url: str | None, prefix: str) -> None:
        self._pool: ConnectionPool | None = None
        self._storage: Storage
        if redis_url:
            self._storage, self._pool = _redis_storage(redis_url, prefix)
        else:
            self._storage = MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self._storage)

    @staticmethod
    def _item(limit: Limit) -> RateLimitItem:
        return RateLimitItemPerSecond(limit.amount, limit.per_seconds, namespace=limit.name)

    async def hit(self, limit: Limit, key: str) -> None:
        """Count one hit of `key` against `limit`, or raise RateLimited if it is spent.

        A refused hit is not counted, so retrying after `retry_after` does succeed.
        """
        item = self._item(limit)
        if await self._strategy.hit(item, key):
            return
        stats = await self._strategy.get_window_stats(item, key)
        wait = math.ceil(stats.reset_time - time.time())
        raise RateLimited(limit, max(1, wait))

    async def reset(self, limit: Limit, key: str) -> None:
        """Forget the hits of `key` against `limit` (e.g. after a successful login)."""
        await self._strategy.clear(self._item(limit), key)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()
        elif isinstance(self._storage, MemoryStorage):
            await self._stop_memory_timer(self._storage)

    @staticmethod
    async def _stop_memory_timer(storage: MemoryStorage) -> None:
        # MemoryStorage expires entries in a background task; stop it so none outlives
        # the event loop it was created on.
        timer = storage.timer
        if timer is not None and not timer.done():
            timer.cancel()
        await storage.reset()
