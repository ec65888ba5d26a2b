"""Shake at 1,000 shakes per second: pairing latency and wrong pairs.

    python bench/shake.py [--rate 1000] [--seconds 10] [--area-km 100] [--spread-ms 250]
                          [--redis-url redis://127.0.0.1:6379/0] [--memory-only]

Pairs of people arrive at random places of an area-km × area-km square (Poisson, `rate`
shakes per second in all); the two of a pair shake `spread-ms` apart at most. Each shake
goes through `NearbyService.match` — the matching of POST /api/v1/nearby/shakes without the
outbox write and the profile look-up. Run once with the in-process matcher (one node) and
once with the Redis matcher (what replicated nodes use), in the same run.
Figures: pairing latency after the second shake of a pair (until both are answered),
p50/p99; wrong pairs (paired with anyone but their partner: goal 0; the guarantee holds for
partners whose shakes reach the server at most the settle time, 250 ms, apart — `pairs_arrived_late`
counts the pairs this single process delayed beyond that); shakes asked again
(ambiguous: strangers shaking nearby in the same window) and shakes left alone.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from omo.core.broker import MemoryBroker
from omo.core.clock import SystemClock
from omo.core.db import Database
from omo.social.nearby.service import NearbyService
from omo.social.nearby.shake import Matcher, MemoryMatcher, RedisMatcher

CENTRE = (31.2304, 121.4737)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else math.nan


async def run(matcher: Matcher, args: argparse.Namespace) -> dict[str, Any]:
    folder = tempfile.mkdtemp()
    service = NearbyService(
        db=Database(f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}"),
        clock=SystemClock(),
        broker=MemoryBroker(),
        identity=None,  # type: ignore[arg-type]  (matching touches neither)
        messaging=None,  # type: ignore[arg-type]
        secret=b"bench",
        matcher=matcher,
    )
    rng = random.Random(2026)
    half = args.area_km * 500
    latencies: list[float] = []
    outcomes = {"paired": 0, "wrong": 0, "again": 0, "alone": 0, "errors": 0, "late": 0}
    tasks: list[asyncio.Task[None]] = []

    starts: dict[uuid.UUID, float] = {}

    async def one(
        who: uuid.UUID, where: tuple[float, float]
    ) -> tuple[str, uuid.UUID | None, float]:
        starts[who] = time.perf_counter()  # when the shake really reaches the matcher
        try:
            outcome, partner = await service.match(who, *where)
        except Exception:  # e.g. no Redis connection free within its timeout: counted
            return "errors", None, time.perf_counter()
        return outcome, partner, time.perf_counter()

    async def pair(delay: float) -> None:
        north, east = rng.uniform(-half, half), rng.uniform(-half, half)
        lat = CENTRE[0] + north / 111_320
        lng = CENTRE[1] + east / (111_320 * math.cos(math.radians(CENTRE[0])))
        a, b = uuid.uuid4(), uuid.uuid4()
        first = asyncio.create_task(one(a, (lat, lng)))
        await asyncio.sleep(delay)
        second_at = time.perf_counter()
        second = asyncio.create_task(one(b, (lat + 0.0002, lng + 0.0002)))
        (oa, pa, ta), (ob, pb, tb) = await asyncio.gather(first, second)
        outcomes["late"] += int(starts.pop(b) - starts.pop(a) > service.config.shake_settle)
        for outcome, partner, mate in ((oa, pa, b), (ob, pb, a)):
            if outcome == "paired":
                outcomes["paired" if partner == mate else "wrong"] += 1
            else:
                outcomes[outcome] += 1
        if oa == ob == "paired" and pa == b and pb == a:
            latencies.append((max(ta, tb) - second_at) * 1000)

    pairs = int(args.rate * args.seconds / 2)
    started = time.perf_counter()
    next_at = started
    for _ in range(pairs):
        next_at += rng.expovariate(args.rate / 2)
        wait = next_at - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(pair(rng.uniform(0, args.spread_ms / 1000))))
    offered = time.perf_counter() - started
    await asyncio.gather(*tasks)
    await matcher.close()
    return {
        "shakes": pairs * 2,
        "shakes_per_s": round(pairs * 2 / offered, 1),
        "pairing_p50_ms": round(percentile(latencies, 50), 1),
        "pairing_p99_ms": round(percentile(latencies, 99), 1),
        "wrong_pairs": outcomes["wrong"],
        "paired": outcomes["paired"],
        "asked_again": outcomes["again"],
        "alone": outcomes["alone"],
        "errors": outcomes["errors"],
        # Pairs whose shakes reached the matcher further apart than its settle time (the
        # spread it tolerates), because this one process lagged behind its own schedule.
        "pairs_arrived_late": outcomes["late"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--area-km", type=float, default=100.0)
    parser.add_argument("--spread-ms", type=float, default=250.0)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--redis-rate", type=float, help="default: --rate")
    args = parser.parse_args()
    figures: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds, "area_km": args.area_km}
    memory = await run(MemoryMatcher(args.window), args)
    figures.update({f"memory_{k}": v for k, v in memory.items()})
    if not args.memory_only:
        prefix = f"omobench:{uuid.uuid4().hex[:8]}:"
        redis_args = argparse.Namespace(**{**vars(args), "rate": args.redis_rate or args.rate})
        figures["redis_rate"] = redis_args.rate
        redis = await run(RedisMatcher(args.redis_url, prefix, args.window), redis_args)
        figures.update({f"redis_{k}": v for k, v in redis.items()})
    ratios = {"omo_vs_goal_p99_300ms": round(300 / memory["pairing_p99_ms"], 2)}
    if not args.memory_only:
        ratios["omo_redis_vs_goal_p99_300ms"] = round(300 / figures["redis_pairing_p99_ms"], 2)
    print(json.dumps({"bench": "shake", "figures": figures, "ratios": ratios}))


if __name__ == "__main__":
    import uvloop  # what `omo serve` runs on (uvicorn[standard])

    uvloop.run(main())
