"""Shake matching: in this process on one node, through Redis when nodes are replicated.

A shake arrives at server time `at` in a small grid cell (H3 resolution 9, ~0.1 km²).
Its settle time ends `settle` seconds later; then it looks at every other shake still
unmatched in its cell and the cells around it that arrived at most `window` seconds before
it (or after it, meanwhile):
- exactly one: the two are paired (both answered at once);
- several: ambiguous, every one of them is asked to shake again (never a wrong guess);
- none: it waits until `window` is over for a later shake to pair with it, then is alone.
A shake answered by another one's decision while it settles is answered at once: the settle
time of a pair is counted from its FIRST shake, so the second shake waits only the rest of it
(`settle` minus the gap between the two). Partners shaking at most `settle` apart are always
both in the first one's decision, so they are paired together or asked again, never paired
with someone else. A decision is atomic (one event loop step in memory, one Lua script in
Redis), so a shake is never paired twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import BlockingConnectionPool, Redis

RESOLUTION = 9

PAIRED = "paired:"
AGAIN = "again"
ALONE = "alone"


class Matcher(Protocol):
    async def add(self, shake_id: str, user_id: uuid.UUID, cell: str) -> float: ...

    async def settle(self, shake_id: str, timeout: float) -> None:  # noqa: ASYNC109
        """Wait `timeout` seconds, or less if an earlier shake's decision answers this one."""

    async def decide(
        self, shake_id: str, user_id: uuid.UUID, at: float, cells: list[str]
    ) -> str | None: ...

    async def wait(self, shake_id: str, timeout: float) -> str | None: ...  # noqa: ASYNC109

    async def give_up(self, shake_id: str) -> str: ...

    async def close(self) -> None: ...


@dataclass
class _Open:
    shake_id: str
    user_id: uuid.UUID
    cell: str
    at: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    result: str | None = None


@dataclass
class MemoryMatcher:
    """One node: open shakes by cell, in this process."""

    window: float
    open: dict[str, list[_Open]] = field(default_factory=dict)
    shakes: dict[str, _Open] = field(default_factory=dict)

    def _prune(self, cell: str, now: float) -> None:
        # Keep a shake while a later one may still look back at it, and while it waits.
        kept = [s for s in self.open.get(cell, []) if now - s.at <= 3 * self.window]
        for gone in self.open.get(cell, []):
            if now - gone.at > 3 * self.window:
                self.shakes.pop(gone.shake_id, None)
        if kept:
            self.open[cell] = kept
        else:
            self.open.pop(cell, None)

    async def add(self, shake_id: str, user_id: uuid.UUID, cell: str) -> float:
        now = time.monotonic()
        self._prune(cell, now)
        shake = _Open(shake_id, user_id, cell, now)
        self.open.setdefault(cell, []).append(shake)
        self.shakes[shake_id] = shake
        return now

    def _resolve(self, shake: _Open, result: str) -> None:
        shake.result = result
        shake.done.set()

    async def decide(
        self, shake_id: str, user_id: uuid.UUID, at: float, cells: list[str]
    ) -> str | None:
        me = self.shakes[shake_id]
        if me.result is not None:
            return me.result
        candidates = [
            other
            for cell in cells
            for other in self.open.get(cell, [])
            if other.result is None
            and other.shake_id != shake_id
            and other.user_id != user_id
            and other.at >= at - self.window
        ]
        if len(candidates) == 1:
            [other] = candidates
            self._resolve(other, PAIRED + str(user_id))
            self._resolve(me, PAIRED + str(other.user_id))
        elif candidates:
            for other in candidates:
                self._resolve(other, AGAIN)
            self._resolve(me, AGAIN)
        return me.result

    async def settle(self, shake_id: str, timeout: float) -> None:  # noqa: ASYNC109
        await self.wait(shake_id, timeout)

    async def wait(self, shake_id: str, timeout: float) -> str | None:  # noqa: ASYNC109
        me = self.shakes[shake_id]
        if me.result is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(me.done.wait(), timeout)
        return me.result

    async def give_up(self, shake_id: str) -> str:
        me = self.shakes[shake_id]
        if me.result is None:
            self._resolve(me, ALONE)
        assert me.result is not None
        return me.result

    async def close(self) -> None:
        self.open.clear()
        self.shakes.clear()


# Redis keys: {prefix}shake:c:{cell} sorted set of "id|user" by arrival (ms, Redis TIME);
# {prefix}shake:r:{id} the result. Every script runs atomically on the Redis server.
_ADD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return now
"""

_DECIDE = """
local me, prefix, since = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ttl, my_user = tonumber(ARGV[4]), ARGV[5]
local mine = redis.call('GET', prefix .. 'r:' .. me)
if mine then return mine end
local found = {}
for _, key in ipairs(KEYS) do
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, since, '+inf')) do
    local id, user = string.match(member, '([^|]+)|(.+)')
    if id ~= me and user ~= my_user and not redis.call('GET', prefix .. 'r:' .. id) then
      table.insert(found, {id, user})
    end
  end
end
if #found == 1 then
  redis.call('SET', prefix .. 'r:' .. found[1][1], 'paired:' .. my_user, 'PX', ttl)
  redis.call('SET', prefix .. 'r:' .. me, 'paired:' .. found[1][2], 'PX', ttl)
  redis.call('PUBLISH', prefix .. 'done', found[1][1])
  return 'paired:' .. found[1][2]
elseif #found > 1 then
  for _, other in ipairs(found) do
    redis.call('SET', prefix .. 'r:' .. other[1], 'again', 'PX', ttl)
    redis.call('PUBLISH', prefix .. 'done', other[1])
  end
  redis.call('SET', prefix .. 'r:' .. me, 'again', 'PX', ttl)
  return 'again'
end
return false
"""

_GIVE_UP = """
local mine = redis.call('GET', KEYS[1])
if mine then return mine end
redis.call('SET', KEYS[1], 'alone', 'PX', tonumber(ARGV[1]))
return 'alone'
"""


class RedisMatcher:
    """Replicated nodes: the open shakes live in Redis, decisions are Lua scripts, and the
    arrival time is Redis's clock — one server time for every node."""

    def __init__(self, redis_url: str, prefix: str, window: float, poll: float = 0.1) -> None:
        # A blocking pool: a burst of shakes waits for a connection instead of failing.
        pool = BlockingConnectionPool.from_url(redis_url, max_connections=256, timeout=10)
        self.redis: Redis = Redis(connection_pool=pool)
        self.prefix = f"{prefix}shake:"
        self.window = window
        self.poll = poll
        self.ttl_ms = int(window * 3000) + 1000
        self._add = self.redis.register_script(_ADD)
        self._decide = self.redis.register_script(_DECIDE)
        self._give_up = self.redis.register_script(_GIVE_UP)
        # Shakes of this node waiting for another node's decision: woken by a message on
        # {prefix}shake:done (and, should one be lost, by reading the result every `poll`).
        self._waiting: dict[str, asyncio.Event] = {}
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(f"{self.prefix}done")
        self._listening.set()
        try:
            async for message in pubsub.listen():
                data = message.get("data")
                shake_id = data.decode() if isinstance(data, bytes) else str(data)
                waiting = self._waiting.get(shake_id)
                if waiting is not None:
                    waiting.set()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _cell(self, cell: str) -> str:
        return f"{self.prefix}c:{cell}"

    async def add(self, shake_id: str, user_id: uuid.UUID, cell: str) -> float:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="omo-shake-listener")
        await self._listening.wait()
        self._waiting[shake_id] = asyncio.Event()
        at = await self._add(keys=[self._cell(cell)], args=[f"{shake_id}|{user_id}", self.ttl_ms])
        return float(at) / 1000

    async def settle(self, shake_id: str, timeout: float) -> None:  # noqa: ASYNC109
        # Woken by the message another node's decision publishes (no read: `decide` that
        # follows returns the result already set).
        woken = self._waiting.setdefault(shake_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), timeout)

    async def decide(
        self, shake_id: str, user_id: uuid.UUID, at: float, cells: list[str]
    ) -> str | None:
        since = int((at - self.window) * 1000)
        result = await self._decide(
            keys=[self._cell(c) for c in cells],
            args=[shake_id, self.prefix, since, self.ttl_ms, str(user_id)],
        )
        if not result:
            return None
        self._waiting.pop(shake_id, None)
        return result.decode() if isinstance(result, bytes) else str(result)

    async def wait(self, shake_id: str, timeout: float) -> str | None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        key = f"{self.prefix}r:{shake_id}"
        woken = self._waiting.setdefault(shake_id, asyncio.Event())
        try:
            while True:
                result = await self.redis.get(key)
                if result is not None:
                    return result.decode() if isinstance(result, bytes) else str(result)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(left, self.poll))
        finally:
            self._waiting.pop(shake_id, None)

    async def give_up(self, shake_id: str) -> str:
        self._waiting.pop(shake_id, None)
        result = await self._give_up(keys=[f"{self.prefix}r:{shake_id}"], args=[self.ttl_ms])
        return result.decode() if isinstance(result, bytes) else str(result)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self.redis.aclose()
