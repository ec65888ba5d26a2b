"""Abuse limits ("10 logins per phone per 15 minutes") on a moving window.

A moving window, unlike a fixed one, cannot be beaten by bursting at a window edge
(twice the amount in a moment). Counters live in process memory (plain dictionaries) on a
single node and in Redis when nodes are replicated, so every node enforces the same budget.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage, Storage
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


class _MemoryWindows:
    """Moving windows in this process's memory: per (limit, key) the times of counted hits.

    Plain dictionaries on the event loop's thread: the `limits` library's in-memory storage
    hands every expiry sweep to a worker thread, which cost milliseconds per request under
    load (docs/BENCHMARKS.md, payments)."""

    SWEEP_SECONDS = 60.0

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], tuple[int, deque[float]]] = {}
        self._next_sweep = 0.0

    def hit(self, limit: Limit, key: str) -> float | None:
        """Count the hit and return None, or return the seconds until one is allowed."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        window = self._hits.setdefault((limit.name, key), (limit.per_seconds, deque()))[1]
        cutoff = now - limit.per_seconds
        while window and window[0] <= cutoff:
            window.popleft()
        if len(window) < limit.amount:
            window.append(now)
            return None
        return window[0] + limit.per_seconds - now

    def reset(self, limit: Limit, key: str) -> None:
        self._hits.pop((limit.name, key), None)

    def _sweep(self, now: float) -> None:
        """Forget keys whose hits have all left their window."""
        self._next_sweep = now + self.SWEEP_SECONDS
        for name_key, (per_seconds, window) in list(self._hits.items()):
            if not window or window[-1] <= now - per_seconds:
                del self._hits[name_key]


class RateLimiter:
    """Counts hits per (limit, key) in memory, or in Redis when a URL is given."""

    def __init__(self, redis_url: str | None, prefix: str) -> None:
        self._pool: ConnectionPool | None = None
        self._memory: _MemoryWindows | None = None
        self._strategy: MovingWindowRateLimiter | None = None
        if redis_url:
            storage, self._pool = _redis_storage(redis_url, prefix)
            self._strategy = MovingWindowRateLimiter(storage)
        else:
            self._memory = _MemoryWindows()

    @staticmethod
    def _item(limit: Limit) -> RateLimitItem:
        return RateLimitItemPerSecond(limit.amount, limit.per_seconds, namespace=limit.name)

    async def hit(self, limit: Limit, key: str) -> None:
        """Count one hit of `key` against `limit`, or raise RateLimited if it is spent.

        A refused hit is not counted, so retrying after `retry_after` does succeed.
        """
        if self._memory is not None:
            wait = self._memory.hit(limit, key)
            if wait is not None:
                raise RateLimited(limit, max(1, math.ceil(wait)))
            return
        assert self._strategy is not None
        item = self._item(limit)
        if await self._strategy.hit(item, key):
            return
        stats = await self._strategy.get_window_stats(item, key)
        wait = math.ceil(stats.reset_time - time.time())
        raise RateLimited(limit, max(1, wait))

    async def reset(self, limit: Limit, key: str) -> None:
        """Forget the hits of `key` against `limit` (e.g. after a successful login)."""
        if self._memory is not None:
            self._memory.reset(limit, key)
            return
        assert self._strategy is not None
        await self._strategy.clear(self._item(limit), key)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()
