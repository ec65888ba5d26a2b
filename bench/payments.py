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
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from payments_setup import LeanClient, Server, World, fund, make_settings, percentile, seed

# The bench pays 10.00 EUR: at the default fee (60 bps) every payment moves three accounts
# (customer, merchant, platform fee), like the bare limit.
AMOUNT, MINOR, FEE = "10.00", 1000, 1000 * 60 // 10_000


@dataclass
class Ids:
    """The real rows the bare limit writes against (made by the OMO run)."""

    merchant_id: uuid.UUID
    merchant_account: uuid.UUID
    fee_account: uuid.UUID
    customers: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]  # user, session, wallet account


def _payload(payment: str, merchant: str, order: str, user: str) -> str:
    return json.dumps(
        {
            "payment_id": payment,
            "merchant_id": merchant,
            "store_id": None,
            "order_id": order,
            "user_id": user,
            "currency": "EUR",
            "amount_minor": MINOR,
            "discount_minor": 0,
            "coupon_id": None,
        }
    )


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
                    "amount": AMOUNT,
                    "currency": "EUR",
                    "order_id": uuid.uuid4().hex,
                },
            )
            latencies.append(time.perf_counter() - started)
            assert status == 200, paid
            done += 1

    started, cpu = time.perf_counter(), server.cpu_seconds()
    await asyncio.gather(*(customer(t) for t in world.customer_tokens))
    elapsed, cpu = time.perf_counter() - started, server.cpu_seconds() - cpu
    await client.close()
    return {
        "payments_per_s": done / elapsed,
        "server_cpu_ms_per_payment": cpu * 1000 / max(done, 1),
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "payments": done,
    }


_MOVE_SQLITE = (
    "UPDATE pay_accounts SET balance_minor = balance_minor + "
    "CASE id WHEN ? THEN ? WHEN ? THEN ? WHEN ? THEN ? ELSE 0 END WHERE id IN (?, ?, ?) "
    "AND (may_go_negative = 1 OR balance_minor + "
    "CASE id WHEN ? THEN ? WHEN ? THEN ? WHEN ? THEN ? ELSE 0 END >= 0) "
    "RETURNING id, balance_minor"
)


def _sqlite_ids(db: sqlite3.Connection, world: World) -> Ids:
    def one(sql: str, *args: object) -> str:
        return str(db.execute(sql, args).fetchone()[0])

    account = "SELECT id FROM pay_accounts WHERE kind = ? AND owner = ? AND currency = 'EUR'"
    customers = []
    for user in world.customer_ids:
        session = one("SELECT id FROM identity_sessions WHERE user_id = ?", uuid.UUID(user).hex)
        customers.append(
            (uuid.UUID(user), uuid.UUID(session), uuid.UUID(one(account, "user", user)))
        )
    return Ids(
        uuid.UUID(world.merchant_id),
        uuid.UUID(one(account, "merchant", world.merchant_id)),
        uuid.UUID(one(account, "fee", "platform")),
        customers,
    )


def bare_sqlite(path: str, world: World, seconds: float) -> dict[str, Any]:
    """One process, plain sqlite3, the same database file, tables, indexes, constraints and
    pragmas as `omo serve` (WAL, synchronous=NORMAL, foreign keys on); per payment the same
    durable writes OMO makes: the code (void the device's older ones, insert) in its own
    transaction, then claim the code, the three balances in one conditional UPDATE, the
    transfer, its three entries, the outbox event and the payment row, committed."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    ids = _sqlite_ids(db, world)
    merchant, merchant_account, fee_account = (
        ids.merchant_id.hex,
        ids.merchant_account.hex,
        ids.fee_account.hex,
    )
    latencies: list[float] = []
    done = 0
    stop_at = time.perf_counter() + seconds
    started, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() < stop_at:
        user_id, session_id, wallet = ids.customers[done % len(ids.customers)]
        user, session, account = user_id.hex, session_id.hex, wallet.hex
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        code = "28" + str(secrets.randbelow(10**16)).zfill(16)
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "UPDATE pay_codes SET used_at = ? WHERE session_id = ? AND used_at IS NULL",
            (stamp, session),
        )
        db.execute(
            "INSERT INTO pay_codes (code, user_id, session_id, expires_at, used_at) "
            "VALUES (?, ?, ?, ?, NULL)",
            (code, user, session, (now + timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M:%S.%f")),
        )
        db.execute("COMMIT")
        begin = time.perf_counter()
        payment, transfer, order = uuid.uuid4(), uuid.uuid4().hex, uuid.uuid4().hex
        legs = sorted(((account, -MINOR), (merchant_account, MINOR - FEE), (fee_account, FEE)))
        flat = [value for leg in legs for value in leg]
        db.execute("BEGIN IMMEDIATE")
        claimed = db.execute(
            "UPDATE pay_codes SET used_at = ? WHERE code = ? AND used_at IS NULL "
            "AND expires_at > ? RETURNING user_id, session_id",
            (stamp, code, stamp),
        ).fetchone()
        assert claimed is not None
        after = dict(
            db.execute(
                _MOVE_SQLITE,
                (*flat, *(leg[0] for leg in legs), *flat),
            ).fetchall()
        )
        assert len(after) == 3
        db.execute(
            "INSERT INTO pay_transfers (id, kind, reference, rate, created_at) "
            "VALUES (?, 'payment', ?, NULL, ?)",
            (transfer, str(payment), stamp),
        )
        db.execute(
            "INSERT INTO pay_entries (transfer_id, account_id, amount_minor, "
            "balance_after_minor, created_at) VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?), "
            "(?, ?, ?, ?, ?)",
            [v for a, m in legs for v in (transfer, a, m, after[a], stamp)],
        )
        db.execute(
            "INSERT INTO outbox_events (id, topic, payload, occurred_at) "
            "VALUES (?, 'payment.succeeded', ?, ?)",
            (
                uuid.uuid4().hex,
                _payload(str(payment), str(ids.merchant_id), order, str(user_id)),
                stamp,
            ),
        )
        db.execute(
            "INSERT INTO pay_payments (id, merchant_id, order_id, user_id, session_id, "
            "currency, amount_minor, discount_minor, fee_minor, refunded_minor, status, "
            "request_hash, created_at, paid_at) "
            "VALUES (?, ?, ?, ?, ?, 'EUR', ?, 0, ?, 0, 'succeeded', ?, ?, ?)",
            (payment.hex, merchant, order, user, session, MINOR, FEE, "0" * 64, stamp, stamp),
        )
        db.execute("COMMIT")
        latencies.append(time.perf_counter() - begin)
        done += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    return {
        "payments_per_s": done / elapsed,
        "cpu_ms_per_payment": cpu * 1000 / max(done, 1),
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def bare_postgres(url: str, world: World, seconds: float, workers: int) -> dict[str, Any]:
    """asyncpg from one process, `workers` connections, the same database, tables and
    settings as `omo serve`; per payment the same durable writes as OMO (see bare_sqlite),
    the balances in one statement that locks the accounts in id order first."""
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(dsn, min_size=workers, max_size=workers)
    account = "SELECT id FROM pay_accounts WHERE kind = $1 AND owner = $2 AND currency = 'EUR'"
    async with pool.acquire() as connection:
        customers = []
        for user in world.customer_ids:
            session = await connection.fetchval(
                "SELECT id FROM identity_sessions WHERE user_id = $1", uuid.UUID(user)
            )
            customers.append(
                (uuid.UUID(user), session, await connection.fetchval(account, "user", user))
            )
        ids = Ids(
            uuid.UUID(world.merchant_id),
            await connection.fetchval(account, "merchant", world.merchant_id),
            await connection.fetchval(account, "fee", "platform"),
            customers,
        )
    latencies: list[float] = []
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        user, session, wallet = ids.customers[index % len(ids.customers)]
        while time.perf_counter() < stop_at:
            now = datetime.now(UTC)
            code = "28" + str(secrets.randbelow(10**16)).zfill(16)
            async with pool.acquire() as connection:
                async with connection.transaction():
                    await connection.execute(
                        "UPDATE pay_codes SET used_at = $1 WHERE session_id = $2 "
                        "AND used_at IS NULL",
                        now,
                        session,
                    )
                    await connection.execute(
                        "INSERT INTO pay_codes (code, user_id, session_id, expires_at, used_at) "
                        "VALUES ($1, $2, $3, $4, NULL)",
                        code,
                        user,
                        session,
                        now + timedelta(seconds=60),
                    )
                begin = time.perf_counter()
                payment, transfer, order = uuid.uuid4(), uuid.uuid4(), uuid.uuid4().hex
                legs = sorted(
                    ((wallet, -MINOR), (ids.merchant_account, MINOR - FEE), (ids.fee_account, FEE))
                )
                async with connection.transaction():
                    claimed = await connection.fetchrow(
                        "UPDATE pay_codes SET used_at = $1 WHERE code = $2 AND used_at IS NULL "
                        "AND expires_at > $1 RETURNING user_id, session_id",
                        now,
                        code,
                    )
                    assert claimed is not None
                    rows = await connection.fetch(
                        "WITH locked AS (SELECT id FROM pay_accounts WHERE id = ANY($7::uuid[]) "
                        "ORDER BY id FOR UPDATE) UPDATE pay_accounts SET balance_minor = "
                        "balance_minor + CASE id WHEN $1 THEN $2::bigint WHEN $3 THEN "
                        "$4::bigint WHEN $5 THEN $6::bigint ELSE 0 END "
                        "WHERE id IN (SELECT id FROM locked) AND (may_go_negative OR "
                        "balance_minor + CASE id WHEN $1 THEN $2::bigint WHEN $3 THEN "
                        "$4::bigint WHEN $5 THEN $6::bigint ELSE 0 END >= 0) "
                        "RETURNING id, balance_minor",
                        *[v for leg in legs for v in leg],
                        [leg[0] for leg in legs],
                    )
                    after = {row["id"]: row["balance_minor"] for row in rows}
                    assert len(after) == 3
                    await connection.execute(
                        "INSERT INTO pay_transfers (id, kind, reference, rate, created_at) "
                        "VALUES ($1, 'payment', $2, NULL, $3)",
                        transfer,
                        str(payment),
                        now,
                    )
                    await connection.execute(
                        "INSERT INTO pay_entries (transfer_id, account_id, amount_minor, "
                        "balance_after_minor, created_at) SELECT $1, a, m, b, $2 FROM "
                        "unnest($3::uuid[], $4::bigint[], $5::bigint[]) AS t(a, m, b)",
                        transfer,
                        now,
                        [leg[0] for leg in legs],
                        [leg[1] for leg in legs],
                        [after[leg[0]] for leg in legs],
                    )
                    await connection.execute(
                        "INSERT INTO outbox_events (id, topic, payload, occurred_at) "
                        "VALUES ($1, 'payment.succeeded', $2, $3)",
                        uuid.uuid4(),
                        _payload(str(payment), world.merchant_id, order, str(user)),
                        now,
                    )
                    await connection.execute(
                        "INSERT INTO pay_payments (id, merchant_id, order_id, user_id, "
                        "session_id, currency, amount_minor, discount_minor, fee_minor, "
                        "refunded_minor, status, request_hash, created_at, paid_at) VALUES "
                        "($1, $2, $3, $4, $5, 'EUR', $6, 0, $7, 0, 'succeeded', $8, $9, $9)",
                        payment,
                        ids.merchant_id,
                        order,
                        user,
                        session,
                        MINOR,
                        FEE,
                        "0" * 64,
                        now,
                    )
            latencies.append(time.perf_counter() - begin)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
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
        bare = bare_sqlite(path, world, args.seconds)
    else:
        bare = asyncio.run(
            bare_postgres(settings.resolved_database_url, world, args.seconds, args.customers)
        )
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
