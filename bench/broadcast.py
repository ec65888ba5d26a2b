"""Broadcast: time to accept a broadcast at 1k, 100k and 1M followers, and the push rate.

    python bench/broadcast.py [--sizes 1000,100000,1000000] [--connected 10000] [--runs 7]
                              [--database-url postgresql+asyncpg://...]

Creates a fresh database (SQLite in a temporary directory unless --database-url is given),
one brand with one account per audience size, and synthetic followers written in bulk (as
the benchmark's setup, not through the API). Then, for each size, times `broadcast()` — the
whole accepted path: quota row, broadcast row, outbox event, commit — without the realtime
push, which runs after acceptance. The bare limit in the same run is one INSERT + commit
of a comparable row. Accepting must stay flat from 1k to 1M: broadcasts are stored once and
read by reference, never copied per follower.

Push rate: `connected` followers subscribed on the in-process broker, one broadcast pushed to
all of them (median of `runs`), from the broadcast's event to the last delivery; compared with
the bare relay (the broker alone publishing the same frame to the same channels with
`publish_many`) and with one publish per channel. Measured twice: an account whose followers
are all connected, and the largest account with only `connected` of its followers online
(the push must not slow down with the number of followers).

Prints one JSON line: {"bench": "broadcast", "figures": {...}, "ratios": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from omo import migrations
from omo.accounts.models import Follow
from omo.accounts.service import AccountService, ThreadItem
from omo.app import create_app
from omo.core.clock import SystemClock
from omo.core.config import Settings
from omo.core.ids import new_id
from omo.messaging.service import user_channel

BATCH = 20_000


async def add_followers(service: AccountService, account_id: uuid.UUID, count: int) -> None:
    now = SystemClock().now()
    for start in range(0, count, BATCH):
        # one transaction per batch: the write lock is released between them
        async with service.db.engine.begin() as connection:
            rows = [
                {
                    "account_id": account_id,
                    "user_id": new_id(),
                    "openid": f"o{account_id.hex[:6]}{n:09d}",
                    "following": True,
                    "followed_at": now,
                    "scene": "",
                    "last_interaction_at": now,
                }
                for n in range(start, min(count, start + BATCH))
            ]
            await connection.execute(insert(Follow), rows)


async def bare_insert_ms(service: AccountService, runs: int) -> float:
    async with service.db.engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE IF NOT EXISTS bench_bare (id VARCHAR(36) PRIMARY KEY, b TEXT)")
        )
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        async with service.db.transaction() as session:
            await session.execute(
                text("INSERT INTO bench_bare (id, b) VALUES (:id, :b)"),
                {"id": str(uuid.uuid4()), "b": '{"text": "Sale!"}'},
            )
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def accept_ms(service: AccountService, account_id: uuid.UUID, runs: int) -> float:
    await service.set_quota(account_id, runs + 1)
    samples = []
    for n in range(runs):
        started = time.perf_counter()
        await service.broadcast(account_id, {"text": f"Sale {n}!"}, push=False)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def push_rate(
    service: AccountService, account_id: uuid.UUID, connected: int, runs: int
) -> dict[str, float]:
    """Median of `runs` pushes of one broadcast to `connected` subscribed followers of the
    account (drawn at random, as online people are; the account may have many more; the
    first ones by id would sit side by side in the index), from the broadcast's
    event to the last delivery, beside the bare relay: the broker alone publishing the same
    frame to the same channels (`publish_many`), and one publish per channel."""
    async with service.db.sessions() as session:
        users = list(
            (
                await session.scalars(
                    text(
                        "SELECT user_id FROM accounts_follows WHERE account_id = :a"
                        " ORDER BY random() LIMIT :n"
                    ).bindparams(
                        a=account_id.hex if service.db.is_sqlite else account_id, n=connected
                    )
                )
            ).all()
        )
    user_ids = [u if isinstance(u, uuid.UUID) else uuid.UUID(str(u)) for u in users]
    channels = [user_channel(u) for u in user_ids]
    broker = service.broker
    subscriptions = [broker.subscribe(c) for c in channels]
    for sub in subscriptions:
        await sub.open()

    def drain() -> int:
        delivered = 0
        for sub in subscriptions:
            while sub.pending:
                sub._queue.get_nowait()
                delivered += 1
        return delivered

    async def arrived() -> int:
        # The push hands the frame to every local subscriber in one go, after its queries:
        # once the first has it, all have it.
        first = await subscriptions[0].get(60)
        assert first is not None, "the push did not arrive"
        return 1 + drain()

    item = ThreadItem(new_id(), "out", True, {"text": "Now!"}, SystemClock().now())
    frame = {"type": "account-message", "body": {"text": "Now!"}}
    omo, bare, per_channel = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        await service._push_broadcast(account_id, None, item)
        got = await arrived()
        omo.append(got / (time.perf_counter() - started))
        assert got == len(channels), (got, len(channels))
        started = time.perf_counter()
        await broker.publish_many(channels, frame)
        bare.append(drain() / (time.perf_counter() - started))
        started = time.perf_counter()
        await asyncio.gather(*(broker.publish(c, frame) for c in channels))
        per_channel.append(drain() / (time.perf_counter() - started))
    for sub in subscriptions:
        await sub.close()
    return {
        "push_deliveries_per_s": round(statistics.median(omo)),
        "bare_relay_deliveries_per_s": round(statistics.median(bare)),
        "per_channel_publish_deliveries_per_s": round(statistics.median(per_channel)),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="omo-bench-broadcast-"))
    url = args.database_url or f"sqlite+aiosqlite:///{folder / 'omo.sqlite3'}"
    migrations.upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, redis_url=None, secret_key="bench")  # type: ignore[call-arg]
    app = create_app(settings)
    figures: dict[str, Any] = {"backend": "sqlite" if url.startswith("sqlite") else "postgresql"}
    async with app.router.lifespan_context(app):
        service: AccountService = app.state.accounts
        owner = await app.state.identity.ensure_person(
            "+393400000001", "bench password 2026", "Bench"
        )
        org = await service.create_organisation(owner, "Bench brand")
        for size in args.sizes:
            created = await service.create_account(
                owner, org.id, kind="subscription", name=f"B{size}"
            )
            account_id = created.account.id
            if size == max(args.sizes):
                largest_account = account_id
            started = time.perf_counter()
            await add_followers(service, account_id, size)
            print(
                f"{size} followers set up in {time.perf_counter() - started:.1f}s", file=sys.stderr
            )
            await bare_insert_ms(service, 3)  # let the database settle after the bulk load
            figures[f"accept_ms_{label(size)}"] = round(
                await accept_ms(service, account_id, args.runs), 3
            )
            # the bare limit measured right beside it, so ratios hold on a noisy machine
            figures[f"bare_insert_ms_{label(size)}"] = round(
                await bare_insert_ms(service, args.runs), 3
            )
        pushed = await service.create_account(owner, org.id, kind="subscription", name="Push")
        await add_followers(service, pushed.account.id, args.connected)
        figures |= await push_rate(service, pushed.account.id, args.connected, args.runs)
        figures["connected"] = args.connected
        # The same push where only `connected` of the largest audience are online: the work
        # must follow the connected people, not the followers.
        largest_push = await push_rate(service, largest_account, args.connected, args.runs)
        figures[f"push_deliveries_per_s_{label(max(args.sizes))}_followers"] = largest_push[
            "push_deliveries_per_s"
        ]
        figures[f"bare_relay_deliveries_per_s_{label(max(args.sizes))}_followers"] = largest_push[
            "bare_relay_deliveries_per_s"
        ]
    smallest, largest = label(min(args.sizes)), label(max(args.sizes))
    ratios: dict[str, float] = {
        f"accept_{largest}_over_{smallest}": round(
            figures[f"accept_ms_{largest}"] / figures[f"accept_ms_{smallest}"], 2
        ),
    }
    for size in args.sizes:
        name = label(size)
        ratios[f"accept_{name}_over_bare_insert"] = round(
            figures[f"accept_ms_{name}"] / figures[f"bare_insert_ms_{name}"], 2
        )
    ratios |= {
        f"push_{largest}_followers_over_push_{label(args.connected)}_followers": round(
            figures[f"push_deliveries_per_s_{largest}_followers"]
            / figures["push_deliveries_per_s"],
            2,
        ),
        f"push_{largest}_followers_over_bare_relay": round(
            figures[f"push_deliveries_per_s_{largest}_followers"]
            / figures[f"bare_relay_deliveries_per_s_{largest}_followers"],
            2,
        ),
        "push_over_bare_relay": round(
            figures["push_deliveries_per_s"] / figures["bare_relay_deliveries_per_s"], 2
        ),
        "push_over_per_channel_publish": round(
            figures["push_deliveries_per_s"] / figures["per_channel_publish_deliveries_per_s"], 2
        ),
    }
    return {"bench": "broadcast", "figures": figures, "ratios": ratios}


def label(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=lambda v: [int(s) for s in v.split(",")], default=[1000, 100_000, 1_000_000]
    )
    parser.add_argument("--connected", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", default="")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
