"""Payments per second through the HTTP API against the bare SQL limit, in the same run.

    python bench/payments.py [--customers 32] [--seconds 10] [--database-url URL]

OMO: `omo serve` on loopback; each of N concurrent customers asks for a payment code and the
merchant's cashier scans it (POST /api/v1/pay/merchants/{id}/payments with a fresh order id:
idempotency, double-entry transfer, fee, outbox event, durable commit). Latency is the scan
call. Bare limit: the same double-entry transfer (3 conditional balance updates, a transfer,
3 entries and a payment row) as plain SQL transactions from one Python process on the same
database. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
import uuid
from typing import Any

from payments_setup import LeanClient, Server, World, fund, make_settings, percentile, seed

BARE_SCHEMA = """
CREATE TABLE IF NOT EXISTS bare_accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL,
  may_go_negative BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS bare_transfers (id TEXT PRIMARY KEY, reference TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bare_entries (id INTEGER PRIMARY KEY, transfer_id TEXT NOT NULL,
  account_id INTEGER NOT NULL, amount BIGINT NOT NULL, balance_after BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS bare_payments (order_id TEXT PRIMARY KEY, amount BIGINT NOT NULL);
"""


async def omo_load(server: Server, world: World, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    done = 0
    stop_at = time.perf_counter() + seconds
    client = LeanClient(server.url, len(world.customer_tokens) * 2)
    charge = f"/api/v1/pay/merchants/{world.merchant_id}/payments"

    async def customer(token: str) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            status, issued = await client.request("POST", "/api/v1/pay/codes", token)
            assert status == 201, issued
            started = time.perf_counter()
            status, paid = await client.request(
                "POST",
                charge,
                world.owner_token,
                {
                    "code": issued["code"],
                    "amount": "1.00",
                    "currency": "EUR",
                    "order_id": uuid.uuid4().hex,
                },
            )
            latencies.append(time.perf_counter() - started)
            assert status == 200, paid
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(customer(t) for t in world.customer_tokens))
    elapsed = time.perf_counter() - started
    await client.close()
    return {
        "payments_per_s": done / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "payments": done,
    }


def bare_sqlite(path: str, seconds: float) -> dict[str, Any]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(BARE_SCHEMA)
    db.execute("DELETE FROM bare_accounts")
    db.executemany(
        "INSERT INTO bare_accounts VALUES (?, ?, ?)",
        [(1, 10**12, False), (2, 0, False), (3, 0, True)],
    )
    latencies: list[float] = []
    done = 0
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < stop_at:
        begin = time.perf_counter()
        transfer = uuid.uuid4().hex
        db.execute("BEGIN IMMEDIATE")
        after = []
        for account, amount in ((1, -100), (2, 99), (3, 1)):
            row = db.execute(
                "UPDATE bare_accounts SET balance = balance + ? WHERE id = ? AND "
                "(may_go_negative OR balance + ? >= 0) RETURNING balance",
                (amount, account, amount),
            ).fetchone()
            after.append((account, amount, row[0]))
        db.execute("INSERT INTO bare_transfers VALUES (?, ?)", (transfer, "payment"))
        db.executemany(
            "INSERT INTO bare_entries (transfer_id, account_id, amount, balance_after) "
            "VALUES (?, ?, ?, ?)",
            [(transfer, a, m, b) for a, m, b in after],
        )
        db.execute("INSERT INTO bare_payments VALUES (?, ?)", (transfer, 100))
        db.execute("COMMIT")
        latencies.append(time.perf_counter() - begin)
        done += 1
    elapsed = time.perf_counter() - started
    return {
        "payments_per_s": done / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def bare_postgres(url: str, seconds: float, workers: int) -> dict[str, Any]:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(dsn, min_size=workers, max_size=workers)
    async with pool.acquire() as connection:
        await connection.execute(
            "DROP TABLE IF EXISTS bare_accounts, bare_transfers, bare_entries, bare_payments"
        )
        await connection.execute(
            BARE_SCHEMA.replace(
                "bare_entries (id INTEGER PRIMARY KEY", "bare_entries (id BIGSERIAL PRIMARY KEY"
            )
        )
        await connection.execute("TRUNCATE bare_accounts")
        await connection.executemany(
            "INSERT INTO bare_accounts VALUES ($1, $2, $3)",
            [(1, 10**12, False), (2, 0, False), (3, 0, True)],
        )
    latencies: list[float] = []
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            begin = time.perf_counter()
            transfer = uuid.uuid4().hex
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute(
                    "SELECT id FROM bare_accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                    [1, 2, 3],
                )
                after = []
                for account, amount in ((1, -100), (2, 99), (3, 1)):
                    balance = await connection.fetchval(
                        "UPDATE bare_accounts SET balance = balance + $1 WHERE id = $2 AND "
                        "(may_go_negative OR balance + $1 >= 0) RETURNING balance",
                        amount,
                        account,
                    )
                    after.append((transfer, account, amount, balance))
                await connection.execute(
                    "INSERT INTO bare_transfers VALUES ($1, $2)", transfer, "payment"
                )
                await connection.executemany(
                    "INSERT INTO bare_entries (transfer_id, account_id, amount, balance_after) "
                    "VALUES ($1, $2, $3, $4)",
                    after,
                )
                await connection.execute("INSERT INTO bare_payments VALUES ($1, $2)", transfer, 100)
            latencies.append(time.perf_counter() - begin)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return {
        "payments_per_s": done / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    settings = make_settings(args.database_url)
    world = asyncio.run(seed(settings, args.customers))
    asyncio.run(fund(settings, world.customer_ids, "100000.00", "EUR"))
    server = Server(settings)
    try:
        omo = asyncio.run(omo_load(server, world, args.seconds))
    finally:
        server.stop()
    if settings.is_sqlite:
        path = settings.resolved_database_url.split(":///", 1)[1]
        bare = bare_sqlite(path, args.seconds)
    else:
        bare = asyncio.run(bare_postgres(settings.resolved_database_url, args.seconds, 16))
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    print(
        json.dumps(
            {
                "bench": "payments",
                "figures": {
                    "backend": backend,
                    "customers": args.customers,
                    "omo": omo,
                    "bare_sql": bare,
                },
                "ratios": {"omo_vs_bare": omo["payments_per_s"] / bare["payments_per_s"]},
            }
        )
    )


if __name__ == "__main__":
    main()
