"""The flash-sale stock gate: a counter consulted before any database work.

Most claims on a popular sale are refusals once its stock is gone; the gate answers them
without touching the database. It holds, per sale, the units left and how many units each
buyer holds (held or paid), and decides a claim atomically: per-user limit first, then stock.

- `MemoryGate` (single-node default, SQLite): plain dicts changed without an `await` between
  the check and the change, so the event loop makes each decision atomic. Correct for ONE
  `omo serve` process only: two processes would each sell the whole stock to their gates
  (the database's conditional update still refuses the excess, see `CouponService._hold`).
- `RedisGate` (configured with OMO_REDIS_URL): one Lua script per decision, atomic across
  every `omo serve` process that shares the Redis.

The database stays the truth. A gate is (re)built from it: the memory gate when a process
first sees a sale, the Redis gate when a process starts (`rebuild`) or when its keys are
missing. Every unit the gate lets through is still taken by a conditional update in the
database (`taken < stock`) and checked against the buyer's reservations there, so a gate
that is wrong can only make a buyer wait or be refused, never oversell.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from redis.asyncio import BlockingConnectionPool, Redis

Decision = Literal["ok", "sold-out", "limit", "unloaded"]


class StockGate(Protocol):
    shared: bool
    """True when several server processes share this gate (Redis)."""

    async def take(self, sale_id: uuid.UUID, user_id: uuid.UUID, limit: int) -> Decision: ...

    async def load(
        self,
        sale_id: uuid.UUID,
        left: int,
        holders: Mapping[uuid.UUID, int],
        *,
        replace: bool,
    ) -> None:
        """Set a sale's state from the database; without `replace`, only if it is unknown."""
        ...

    async def give_back(
        self,
        sale_id: uuid.UUID,
        users: Iterable[uuid.UUID],
        *,
        units: bool = True,
        holds: bool = True,
    ) -> None:
        """For each user: return one unit (unless `units` is False) and one of their holds
        (unless `holds` is False)."""
        ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Stock:
    left: int
    holders: dict[uuid.UUID, int] = field(default_factory=dict)


class MemoryGate:
    shared = False

    def __init__(self) -> None:
        self._sales: dict[uuid.UUID, _Stock] = {}

    def decide(self, sale_id: uuid.UUID, user_id: uuid.UUID, limit: int) -> Decision:
        """The decision itself, synchronous: nothing else runs between check and change."""
        stock = self._sales.get(sale_id)
        if stock is None:
            return "unloaded"
        held = stock.holders.get(user_id, 0)
        if held >= limit:
            return "limit"
        if stock.left <= 0:
            return "sold-out"
        stock.left -= 1
        stock.holders[user_id] = held + 1
        return "ok"

    async def take(self, sale_id: uuid.UUID, user_id: uuid.UUID, limit: int) -> Decision:
        return self.decide(sale_id, user_id, limit)

    async def load(
        self,
        sale_id: uuid.UUID,
        left: int,
        holders: Mapping[uuid.UUID, int],
        *,
        replace: bool,
    ) -> None:
        if replace or sale_id not in self._sales:
            self._sales[sale_id] = _Stock(left, dict(holders))

    async def give_back(
        self,
        sale_id: uuid.UUID,
        users: Iterable[uuid.UUID],
        *,
        units: bool = True,
        holds: bool = True,
    ) -> None:
        stock = self._sales.get(sale_id)
        if stock is None:
            return  # not loaded: the next load reads the database
        for user in users:
            if units:
                stock.left += 1
            if not holds:
                continue
            held = stock.holders.get(user, 0)
            if held <= 1:
                stock.holders.pop(user, None)
            else:
                stock.holders[user] = held - 1

    def left(self, sale_id: uuid.UUID) -> int | None:
        stock = self._sales.get(sale_id)
        return None if stock is None else stock.left

    async def close(self) -> None:
        self._sales.clear()


# KEYS: left, holders. ARGV: user, limit. -1 unloaded, -2 limit, 0 sold out, 1 taken.
_TAKE = """
local left = redis.call('GET', KEYS[1])
if not left then return -1 end
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held >= tonumber(ARGV[2]) then return -2 end
if tonumber(left) <= 0 then return 0 end
redis.call('DECR', KEYS[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return 1
"""

# KEYS: left, holders. ARGV: replace (0|1), ttl seconds, left, then user, count pairs.
_LOAD = """
if ARGV[1] == '0' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""

# KEYS: left, holders. ARGV: units (0|1), holds (0|1), then users.
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 3, #ARGV do
  if ARGV[1] == '1' then redis.call('INCR', KEYS[1]) end
  if ARGV[2] == '1' and redis.call('HINCRBY', KEYS[2], ARGV[i], -1) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return 1
"""

# A sale's gate lives this long in Redis after its last (re)load; a later claim reloads it.
GATE_TTL_SECONDS = 30 * 24 * 3600
GATE_CONNECTIONS = 32


class RedisGate:
    shared = True

    def __init__(self, url: str, prefix: str) -> None:
        # A burst of claims waits for one of a few connections instead of opening thousands.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=GATE_CONNECTIONS, timeout=30, decode_responses=True
        )
        self._pool = pool
        self._redis = Redis(connection_pool=pool)
        self._prefix = prefix + "flash:"
        self._take = self._redis.register_script(_TAKE)
        self._load = self._redis.register_script(_LOAD)
        self._give_back = self._redis.register_script(_GIVE_BACK)

    def _keys(self, sale_id: uuid.UUID) -> list[str]:
        base = f"{self._prefix}{sale_id}"
        return [base + ":left", base + ":holders"]

    async def take(self, sale_id: uuid.UUID, user_id: uuid.UUID, limit: int) -> Decision:
        answer = int(await self._take(keys=self._keys(sale_id), args=[str(user_id), limit]))
        return {1: "ok", 0: "sold-out", -2: "limit"}.get(answer, "unloaded")  # type: ignore[return-value]

    async def load(
        self,
        sale_id: uuid.UUID,
        left: int,
        holders: Mapping[uuid.UUID, int],
        *,
        replace: bool,
    ) -> None:
        args: list[str | int] = [1 if replace else 0, GATE_TTL_SECONDS, left]
        for user, count in holders.items():
            args += [str(user), count]
        await self._load(keys=self._keys(sale_id), args=args)

    async def give_back(
        self,
        sale_id: uuid.UUID,
        users: Iterable[uuid.UUID],
        *,
        units: bool = True,
        holds: bool = True,
    ) -> None:
        names = [str(user) for user in users]
        if names:
            flags = [1 if units else 0, 1 if holds else 0]
            await self._give_back(keys=self._keys(sale_id), args=[*flags, *names])

    async def close(self) -> None:
        await self._redis.aclose()
        await self._pool.disconnect()
