"""A flash sale over HTTP: N units, many concurrent buyers, never oversold.

    python bench/flash_sale.py [--units 200] [--buyers 20000] [--processes 2]
        [--database-url URL] [--redis-url URL [--workers N]] [--keep DIR] [--profile OUT]

Every buyer is a logged-in person; load processes fire all reservations at once
(POST /api/v1/coupons/flash-sales/{id}/reservations), then each buyer who holds a unit pays
for it (POST /api/v1/pay/flash/reservations/{id}/pay). Checks: exactly `units` reserved and
paid, 0 oversold. Claims/s counts every reservation answer (won or sold out). Bare limit: the
same conditional stock update and reservation insert as plain SQL from one Python process.
The CPU seconds that the server and the load processes used during the claims are reported
beside the rate, so a reader sees which side was the limit. `--keep DIR` seeds the buyers
into DIR once and reuses them in later runs (a new sale each run): seeding 20,000 people
takes minutes and is not what is measured. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvloop
from payments_setup import (
    LeanClient,
    Server,
    World,
    free_port,
    make_settings,
    percentile,
    seed,
)
from sqlalchemy import update

from omo.app import create_app
from omo.core.config import Settings
from omo.core.money import Money
from omo.identity.models import DeviceSession


async def create_sale(settings: Any, merchant_id: str, units: int) -> str:
    """A new sale; every buyer's session last seen an hour ago, as in a real sale (a kept
    world's previous run saw them all: their "last seen" would not be due)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ago = datetime.now(UTC) - timedelta(hours=1)
        async with app.state.db.transaction() as session:
            await session.execute(
                update(DeviceSession)
                .where(DeviceSession.last_seen_at > ago)
                .values(last_seen_at=ago)
            )
        sale = await app.state.coupons.create_sale(
            merchant=merchant_id,
            store=None,
            product="Limited bag",
            price=Money.of("12.00", "EUR"),
            stock=units,
            starts_at=datetime.now(UTC) - timedelta(seconds=1),
            hold_seconds=600,
            per_user_limit=1,
        )
        return str(sale.id)


async def _reserve_all(
    url: str, sale_id: str, tokens: list[str], connections: int
) -> dict[str, Any]:
    """Every buyer presses "buy" at the start: one POST each, with their own token, over
    `connections` keep-alive connections, each connection carrying one request at a time
    (the next waiting buyer's once the answer is read). A buyer's latency runs from the start
    (when they all pressed) to their answer, waiting for a connection included."""
    latencies: list[float] = []
    won: list[tuple[str, str]] = []
    refused = 0
    client = LeanClient(url, connections)
    path = f"/api/v1/coupons/flash-sales/{sale_id}/reservations"
    started = time.perf_counter()
    requests = [(token, client.head("POST", path, token)) for token in tokens]
    waiting = iter(requests)

    async def connection() -> None:
        nonlocal refused
        reader, writer = await client.connect()
        for token, data in waiting:
            status, body = await client.exchange(reader, writer, data)
            latencies.append(time.perf_counter() - started)
            answer = json.loads(body)
            if status == 201:
                won.append((token, answer["id"]))
            else:
                assert answer["type"] == "/problems/flash-sale-sold-out", answer
                refused += 1
        writer.close()

    await asyncio.gather(*(connection() for _ in range(min(connections, len(tokens)))))
    return {"latencies": latencies, "won": won, "refused": refused}


def _load_process(
    url: str, sale_id: str, tokens: list[str], connections: int, start: Any, queue: Any
) -> None:
    start.wait()
    cpu = time.process_time()
    try:
        result = uvloop.run(_reserve_all(url, sale_id, tokens, connections))
        result["cpu_s"] = time.process_time() - cpu
        queue.put(result)
    except BaseException as error:  # the parent must not wait forever for a dead worker
        queue.put({"error": repr(error)})
        raise


def tree_cpu_seconds(pid: int, fields_at: tuple[int, ...] = (11, 12)) -> float:
    """CPU time (user + system; `fields_at=(12,)`: system only) of a process and all its
    descendants so far (Linux /proc): `omo serve --workers N` is a parent and N workers."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = sum(int(fields[at]) for at in fields_at) / tick
    family = {pid}
    grew = True
    while grew:
        more = {child for child, parent in parents.items() if parent in family} - family
        grew = bool(more)
        family |= more
    return sum(cpu.get(member, 0.0) for member in family)


async def _pay_all(url: str, won: list[tuple[str, str]]) -> tuple[int, list[Any]]:
    client = LeanClient(url, 64)

    async def pay(token: str, reservation: str) -> tuple[int, Any]:
        return await client.request(
            "POST", f"/api/v1/pay/flash/reservations/{reservation}/pay", token, {}
        )

    answers = await asyncio.gather(*(pay(t, r) for t, r in won))
    await client.close()
    failures = [body for status, body in answers if status != 200]
    return len(answers) - len(failures), failures[:5]


async def fund(settings: Any, user_ids: list[str]) -> None:
    """Money for each winner; a top-up the sandbox bank declines (a slow bank call on a busy
    machine) is tried again under a new request id. The ids are new each run: in a kept world
    the same buyers may win again (a replayed top-up would add nothing)."""
    run = uuid.uuid4().hex[:12]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for user in user_ids:
            for attempt in range(5):
                result = await app.state.pay.top_up(
                    uuid.UUID(user),
                    f"bench-fund-{run}-{attempt}",
                    f"BENCH-{user}",
                    Money.of("100.00", "EUR"),
                )
                if result.status == "succeeded":
                    break


def start_server(settings: Any, workers: int, profile: str | None) -> Server:
    """`omo serve` (one process, or `--workers N` on PostgreSQL + Redis, where the stock gate
    is shared through Redis); with `profile`, under bench/sampler.py."""
    server = Server.__new__(Server)
    server.port = free_port()
    server.url = f"http://127.0.0.1:{server.port}"
    env = {
        **os.environ,
        "OMO_DATA_DIR": str(settings.data_dir),
        "OMO_SECRET_KEY": settings.secret_key or "",
        "OMO_PORT": str(server.port),
        "OMO_LOG_LEVEL": "warning",
        "OMO_PAYMENT_CODES_PER_MINUTE": str(settings.payment_codes_per_minute),
    }
    if settings.database_url:
        env["OMO_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["OMO_REDIS_URL"] = settings.redis_url
        env["OMO_REDIS_PREFIX"] = settings.redis_prefix
    server.log = settings.data_dir / "server.log"
    command = [sys.executable]
    if profile:
        command += [str(Path(__file__).with_name("sampler.py")), profile]
    command += ["-m", "omo.cli", "serve", "--workers", str(workers)]
    with server.log.open("w") as output:
        server.process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                time.sleep(3 * (workers - 1))  # every worker up, not just the first
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("server did not start:\n" + server.log.read_text())


def world_in(settings: Settings, buyers: int) -> World:
    """The buyers seeded into `settings.data_dir` by an earlier run with --keep, or new ones."""
    saved = settings.data_dir / "world.json"
    if saved.exists():
        known = json.loads(saved.read_text())
        if known["database_url"] == settings.database_url and len(known["tokens"]) >= buyers:
            return World(
                settings,
                known["owner_token"],
                known["merchant_id"],
                known["tokens"][:buyers],
                known["ids"][:buyers],
            )
    world = asyncio.run(seed(settings, buyers))
    saved.write_text(
        json.dumps(
            {
                "database_url": settings.database_url,
                "owner_token": world.owner_token,
                "merchant_id": world.merchant_id,
                "tokens": world.customer_tokens,
                "ids": world.customer_ids,
            }
        )
    )
    return world


def kept_settings(folder: Path, database_url: str | None) -> Settings:
    """Settings over a folder that outlives the run (the same secret key every time)."""
    folder.mkdir(parents=True, exist_ok=True)
    return Settings(  # type: ignore[call-arg]
        data_dir=folder,
        database_url=database_url,
        secret_key="bench-kept-" + folder.name,
        payment_codes_per_minute=1_000_000,
    )


def bare_sqlite(path: str, buyers: int, units: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(
        # A kept world (--keep) still has the previous run's tables.
        "DROP TABLE IF EXISTS bare_sale; DROP TABLE IF EXISTS bare_reservation;"
        "CREATE TABLE bare_sale (id INTEGER PRIMARY KEY, stock INT, taken INT);"
        "CREATE TABLE bare_reservation (id TEXT PRIMARY KEY, user_id TEXT, status TEXT);"
    )
    db.execute("INSERT INTO bare_sale VALUES (1, ?, 0)", (units,))
    started = time.perf_counter()
    for _ in range(buyers):
        db.execute("BEGIN IMMEDIATE")
        taken = db.execute(
            "UPDATE bare_sale SET taken = taken + 1 WHERE id = 1 AND taken < stock"
        ).rowcount
        if taken:
            db.execute(
                "INSERT INTO bare_reservation VALUES (?, ?, 'held')", (uuid.uuid4().hex, "u")
            )
        db.execute("COMMIT")
    return buyers / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--buyers", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--connections", type=int, default=256, help="keep-alive connections per load process"
    )
    parser.add_argument("--redis-url", default=None, help="the shared stock gate")
    parser.add_argument("--workers", type=int, default=1, help="server processes (Redis)")
    parser.add_argument("--keep", default=None, help="folder that keeps the seeded buyers")
    parser.add_argument("--profile", default=None, help="sample the server's CPU into this file")
    parser.add_argument(
        "--seed-only", action="store_true", help="seed the buyers into --keep and stop"
    )
    args = parser.parse_args()
    if args.workers > 1 and not (args.redis_url and args.database_url):
        parser.error("--workers N needs --database-url (PostgreSQL) and --redis-url")
    if args.seed_only and not args.keep:
        parser.error("--seed-only needs --keep")
    if args.keep:
        settings = kept_settings(Path(args.keep), args.database_url)
    else:
        settings = make_settings(args.database_url)
    if args.redis_url:
        settings.redis_url = args.redis_url
        settings.redis_prefix = f"omobench:{uuid.uuid4().hex[:8]}:"
    world = world_in(settings, args.buyers)
    if args.seed_only:
        return
    sale_id = asyncio.run(create_sale(settings, world.merchant_id, args.units))
    server = start_server(settings, args.workers, args.profile)
    try:
        context = multiprocessing.get_context("spawn")
        start, queue = context.Event(), context.Queue()
        shares = [world.customer_tokens[i :: args.processes] for i in range(args.processes)]
        workers = [
            context.Process(
                target=_load_process,
                args=(server.url, sale_id, share, args.connections, start, queue),
            )
            for share in shares
        ]
        for worker in workers:
            worker.start()
        time.sleep(2)
        server_cpu = tree_cpu_seconds(server.process.pid)
        server_system = tree_cpu_seconds(server.process.pid, (12,))
        load_before = os.getloadavg()
        began = time.perf_counter()
        start.set()
        results = [queue.get() for _ in workers]
        failed = [result["error"] for result in results if "error" in result]
        if failed:
            raise RuntimeError(f"a load process failed: {failed}")
        elapsed = time.perf_counter() - began
        server_cpu = tree_cpu_seconds(server.process.pid) - server_cpu
        server_system = tree_cpu_seconds(server.process.pid, (12,)) - server_system
        load_after = os.getloadavg()
        for worker in workers:
            worker.join()
        won = [item for result in results for item in result["won"]]
        latencies = [value for result in results for value in result["latencies"]]
        ids = dict(zip(world.customer_tokens, world.customer_ids, strict=True))
        asyncio.run(fund(settings, [ids[token] for token, _ in won]))
        paid, pay_failures = asyncio.run(_pay_all(server.url, won))
    finally:
        server.stop()
    claims_per_s = args.buyers / elapsed
    # The bare limit runs on the SQLite file (or, with PostgreSQL, on a SQLite file beside it).
    path = (
        settings.resolved_database_url.split(":///", 1)[1]
        if settings.is_sqlite
        else str(settings.data_dir / "bare.sqlite3")
    )
    bare = bare_sqlite(path, args.buyers, args.units)
    print(
        json.dumps(
            {
                "bench": "flash-sale",
                "figures": {
                    "backend": "sqlite" if settings.is_sqlite else "postgresql",
                    "gate": "redis" if settings.redis_url else "memory",
                    "server_workers": args.workers,
                    "load_processes": args.processes,
                    "connections_per_load_process": args.connections,
                    "units": args.units,
                    "buyers": args.buyers,
                    "reserved": len(won),
                    "paid": paid,
                    "pay_failures": pay_failures,
                    "oversold": max(0, len(won) - args.units),
                    "claims_per_s": claims_per_s,
                    "p50_ms": percentile(latencies, 0.5) * 1000,
                    "p99_ms": percentile(latencies, 0.99) * 1000,
                    "claims_s": elapsed,
                    "server_cpu_s": server_cpu,
                    "server_cpu_us_per_claim": server_cpu / args.buyers * 1e6,
                    "server_system_cpu_s": server_system,
                    "generator_cpu_s": sum(result["cpu_s"] for result in results),
                    "load_average_before_after": [load_before[0], load_after[0]],
                    "bare_claims_per_s": bare,
                },
                "ratios": {"omo_vs_bare": claims_per_s / bare},
            }
        )
    )


if __name__ == "__main__":
    main()
