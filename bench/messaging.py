"""Messaging throughput and latency: OMO over WebSocket against a bare Python WebSocket relay.

    python bench/messaging.py [--pairs 50] [--seconds 10] [--window 8]

Starts `omo serve` on loopback (SQLite in a temporary directory unless --database-url /
--redis-url are given), creates N pairs of friends with a 1:1 chat each, then a load generator
in its own process opens N sender and N receiver WebSockets. Each sender keeps up to
`window` messages in flight and sends the next one when the durable ack arrives; receivers
time each message from send to receipt. The same load then runs against the bare limit: a
minimal WebSocket relay in Python (no storage, no auth) that acks and forwards.

Then the same pairs run against Matrix Synapse (bench/synapse_peer.py: 1:1 rooms, the send
API and /sync), when `make bench-synapse` has installed it.

Prints one JSON line: {"bench": "messaging", "figures": {...}, "ratios": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import synapse_peer
import websockets

PASSWORD = "bench password 2026"


@dataclass
class Pair:
    sender_token: str
    receiver_token: str
    conversation: str
    receiver_name: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the work: the same for both servers ---------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(
    kind: str,
    url: str,
    pairs: list[Pair],
    seconds: float,
    window: int,
    rate: float | None,
    server_pid: int,
) -> dict[str, Any]:
    """Closed loop (`rate` None: up to `window` in flight per sender) or open loop (each
    sender paced at `rate` messages/s, in flight bounded only for safety)."""
    latencies: list[float] = []
    run = os.urandom(4).hex()  # fresh client ids: a repeated id is (rightly) not a new message
    measuring = False
    stop = asyncio.Event()
    delivered = 0

    async def hello(connection: Any, token: str, name: str) -> None:
        if kind == "omo":
            await connection.send(json.dumps({"type": "auth", "token": token}))
        else:
            await connection.send(json.dumps({"type": "hello", "me": name}))
        while json.loads(await connection.recv())["type"] != "ready":
            pass

    async def receiver(pair: Pair, connection: Any) -> None:
        nonlocal delivered
        async for raw in connection:
            frame = json.loads(raw)
            if frame["type"] != "message":
                continue
            sent_at = float(frame["message"]["text"].split(" ", 1)[0])
            if measuring:
                latencies.append(time.perf_counter() - sent_at)
                delivered += 1

    async def sender(pair: Pair, connection: Any) -> None:
        slots = asyncio.Semaphore(window)

        async def acks() -> None:
            async for raw in connection:
                if json.loads(raw)["type"] in ("ack", "error"):
                    slots.release()

        reader = asyncio.create_task(acks())
        try:
            await send_loop(connection, pair, slots)
        finally:
            reader.cancel()

    async def send_loop(connection: Any, pair: Pair, slots: asyncio.Semaphore) -> None:
        n = 0
        next_at = time.perf_counter()
        if rate:
            # Each sender starts at a random point of its period: started together, the 50
            # senders would fire in lockstep, a burst of 50 at once every period, and the
            # figure would be that burst's queueing rather than latency at this rate.
            next_at += random.random() / rate
        while not stop.is_set():
            if rate:
                next_at += 1 / rate
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await slots.acquire()
            n += 1
            frame = {
                "type": "send",
                "id": f"{run}-{n}",
                "conversation": pair.conversation,
                "to": pair.receiver_name,
                "text": f"{time.perf_counter()} hello from the bench",
            }
            await connection.send(json.dumps(frame))

    connections = []
    for index, pair in enumerate(pairs):
        receiving = await websockets.connect(url, max_size=2**21, compression=None)
        await hello(receiving, pair.receiver_token, pair.receiver_name)
        sending = await websockets.connect(url, max_size=2**21, compression=None)
        await hello(sending, pair.sender_token, f"sender-{index}")
        connections.append((pair, sending, receiving))
    tasks = [asyncio.create_task(receiver(p, r)) for p, _s, r in connections]
    tasks += [asyncio.create_task(sender(p, s)) for p, s, _r in connections]
    await asyncio.sleep(min(2.0, seconds / 4))  # warm-up
    measuring = True
    started = time.perf_counter()
    server_cpu, own_cpu = _cpu_seconds(server_pid), time.process_time()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.perf_counter() - started
    server_cpu = _cpu_seconds(server_pid) - server_cpu
    own_cpu = time.process_time() - own_cpu
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for _p, sending, receiving in connections:
        await sending.close()
        await receiving.close()
    return {
        "delivered_per_s": round(delivered / elapsed, 1),
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "delivered": delivered,
        # Share of one core used while measuring: the server's and the load generator's.
        "server_cpu": round(server_cpu / elapsed, 2),
        "load_generator_cpu": round(own_cpu / elapsed, 2),
        # Deliveries per second of the server's own CPU time: what one free core would give,
        # the steadier figure when other work shares the machine.
        "delivered_per_server_cpu_s": round(delivered / server_cpu) if server_cpu else None,
    }


def _load_process(
    kind: str,
    url: str,
    pairs: list[Pair],
    seconds: float,
    window: int,
    rate: float | None,
    server_pid: int,
    out: Any,
) -> None:
    out.put(asyncio.run(_load(kind, url, pairs, seconds, window, rate, server_pid)))


def run_load(
    kind: str,
    url: str,
    pairs: list[Pair],
    seconds: float,
    window: int,
    server_pid: int,
    rate: float | None = None,
) -> dict[str, Any]:
    """The load generator runs in its own process, so it does not share the server's CPU."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(
        target=_load_process, args=(kind, url, pairs, seconds, window, rate, server_pid, out)
    )
    process.start()
    result: dict[str, Any] = out.get(timeout=seconds + 300)
    process.join(30)
    return result


# -- the bare limit: a minimal relay ------------------------------------------------------------


async def _relay(port: int) -> None:
    """The bare limit: no storage, no auth, no checks, but the same frames as OMO's protocol
    (a sequence per conversation, the ack and the delivered message carry the full message
    object), so both servers move the same bytes and encode the same JSON."""
    peers: dict[str, Any] = {}
    sequences: dict[str, int] = {}

    async def handler(connection: Any) -> None:
        me = ""
        async for raw in connection:
            frame = json.loads(raw)
            if frame["type"] == "hello":
                me = frame["me"]
                peers[me] = connection
                await connection.send(json.dumps({"type": "ready"}))
            elif frame["type"] == "send":
                conversation = frame["conversation"]
                seq = sequences[conversation] = sequences.get(conversation, 0) + 1
                message = {
                    "id": str(uuid.uuid4()),
                    "conversation": conversation,
                    "seq": seq,
                    "client_id": frame["id"],
                    "sender": me,
                    "sender_name": me,
                    "kind": "text",
                    "text": frame["text"],
                    "card": None,
                    "mentions": [],
                    "mention_all": False,
                    "media": None,
                    "location": None,
                    "target_seq": None,
                    "event": None,
                    "people": [],
                    "sent_at": datetime.now(UTC).isoformat(),
                    "recalled": False,
                }
                ack = {"type": "ack", "id": frame["id"], "seq": seq, "duplicate": False}
                await connection.send(json.dumps({**ack, "message": message}))
                target = peers.get(frame["to"])
                if target is not None:
                    await target.send(json.dumps({"type": "message", "message": message}))

    async with websockets.serve(handler, "127.0.0.1", port, max_size=2**20, compression=None):
        await asyncio.Future()


def _relay_process(port: int) -> None:
    try:
        import uvloop

        uvloop.run(_relay(port))
    except ImportError:
        asyncio.run(_relay(port))


# -- OMO ----------------------------------------------------------------------------------------


def _omo_env(
    data_dir: Path, port: int, database_url: str | None, redis_url: str | None
) -> dict[str, str]:
    env = {
        **os.environ,
        "OMO_DATA_DIR": str(data_dir),
        "OMO_SECRET_KEY": "bench-secret",
        "OMO_PORT": str(port),
        "OMO_LOG_LEVEL": "warning",
    }
    if database_url:
        env["OMO_DATABASE_URL"] = database_url
    if redis_url:
        env["OMO_REDIS_URL"] = redis_url
        env["OMO_REDIS_PREFIX"] = f"omobench:{os.getpid()}:"
    return env


async def _setup_omo(env: dict[str, str], pairs: int) -> list[Pair]:
    from omo import migrations
    from omo.app import create_app
    from omo.core.config import Settings

    settings = Settings(
        data_dir=Path(env["OMO_DATA_DIR"]),
        secret_key=env["OMO_SECRET_KEY"],
        database_url=env.get("OMO_DATABASE_URL"),
        redis_url=env.get("OMO_REDIS_URL"),
        redis_prefix=env.get("OMO_REDIS_PREFIX", "omo:"),
    )
    migrations.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    made: list[Pair] = []
    run_id = os.getpid() % 10_000
    async with app.router.lifespan_context(app):
        identity, messaging = app.state.identity, app.state.messaging

        async def person(n: int, role: str) -> tuple[Any, str, str]:
            omo_id = f"b{role}{run_id:04d}{n:04d}"
            phone = f"+3934{1 if role == 's' else 2}{run_id:04d}{n:03d}"
            user_id = await identity.ensure_person(phone, PASSWORD, omo_id, omo_id)
            issued = await identity.log_in(
                phone,
                PASSWORD,
                device_name="bench",
                kind="app",
                user_agent="bench",
                client_address=f"10.{1 if role == 's' else 2}.{n // 250}.{n % 250}",
            )
            return user_id, omo_id, issued.token

        for n in range(pairs):
            s_id, s_omo, s_token = await person(n, "s")
            r_id, r_omo, r_token = await person(n, "r")
            await messaging.request_friend(s_id, r_omo)
            await messaging.accept_friend(r_id, s_omo)
            conversation = await messaging.open_direct(s_id, r_omo)
            made.append(Pair(s_token, r_token, str(conversation), r_omo))
    return made


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("omo serve exited:\n" + log.read_text())
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("omo serve did not start:\n" + log.read_text())


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _idle_connections(url: str, pairs: list[Pair], count: int) -> list[Any]:
    opened = []
    for n in range(count):
        connection = await websockets.connect(url)
        await connection.send(
            json.dumps({"type": "auth", "token": pairs[n % len(pairs)].receiver_token})
        )
        await connection.recv()
        opened.append(connection)
    return opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=8, help="messages in flight per sender")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--idle", type=int, default=0, help="also measure N idle connections")
    parser.add_argument(
        "--no-synapse", action="store_true", help="skip the Synapse peer (quicker runs)"
    )
    parser.add_argument(
        "--profile", default=None, help="sample the OMO server's CPU into this file (sampler.py)"
    )
    args = parser.parse_args()

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="omo-bench-") as folder:
        port = free_port()
        env = _omo_env(Path(folder), port, args.database_url, args.redis_url)
        pairs = asyncio.run(_setup_omo(env, args.pairs))
        log = Path(folder) / "server.log"
        with log.open("w") as output:
            command = [sys.executable]
            if args.profile:
                command += [str(Path(__file__).with_name("sampler.py")), args.profile]
            server = subprocess.Popen(
                [*command, "-m", "omo.cli", "serve"], env=env, stdout=output, stderr=output
            )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", server, log)
            url = f"ws://127.0.0.1:{port}/ws"
            figures["omo"] = run_load("omo", url, pairs, args.seconds, args.window, server.pid)
            # p99 at half the maximum rate: an open loop, each sender paced.
            half = figures["omo"]["delivered_per_s"] / 2 / len(pairs)
            figures["omo_half_rate"] = {
                "offered_per_s": round(half * len(pairs), 1),
                **run_load("omo", url, pairs, args.seconds, 1000, server.pid, rate=half),
            }
            if args.idle:
                before = _rss_kib(server.pid)

                async def idle() -> None:
                    opened = await _idle_connections(url, pairs, args.idle)
                    await asyncio.sleep(1)
                    after = _rss_kib(server.pid)
                    figures["omo_idle"] = {
                        "connections": args.idle,
                        "kib_per_connection": round((after - before) / args.idle, 2),
                    }
                    for connection in opened:
                        await connection.close()

                asyncio.run(idle())
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)

    relay_port = free_port()
    relay = multiprocessing.get_context("spawn").Process(target=_relay_process, args=(relay_port,))
    relay.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", relay_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        assert relay.pid is not None
        figures["bare_relay"] = run_load(
            "relay", f"ws://127.0.0.1:{relay_port}", pairs, args.seconds, args.window, relay.pid
        )
    finally:
        relay.terminate()
        relay.join(10)

    if args.no_synapse:
        figures["synapse"] = {"skipped": "--no-synapse"}
    else:
        with tempfile.TemporaryDirectory(prefix="omo-bench-synapse-") as folder:
            figures["synapse"] = synapse_peer.measure(
                Path(__file__).resolve().parents[1],
                Path(folder),
                args.pairs,
                args.seconds,
                args.window,
            )

    omo, bare, synapse = figures["omo"], figures["bare_relay"], figures["synapse"]
    ratios = {
        "omo_vs_synapse_throughput": round(omo["delivered_per_s"] / synapse["delivered_per_s"], 1)
        if synapse.get("delivered_per_s")
        else None,
        "omo_vs_bare_relay_throughput": round(omo["delivered_per_s"] / bare["delivered_per_s"], 3)
        if bare["delivered_per_s"]
        else None,
        "omo_p99_ms_at_half_rate": figures["omo_half_rate"]["p99_ms"],
        "omo_vs_bare_relay_per_server_cpu": round(
            omo["delivered_per_server_cpu_s"] / bare["delivered_per_server_cpu_s"], 3
        )
        if omo.get("delivered_per_server_cpu_s") and bare.get("delivered_per_server_cpu_s")
        else None,
    }
    print(
        json.dumps(
            {
                "bench": "messaging",
                "params": {
                    "pairs": args.pairs,
                    "seconds": args.seconds,
                    "window": args.window,
                    "database": "postgresql" if args.database_url else "sqlite",
                    "broker": "redis" if args.redis_url else "memory",
                },
                "figures": figures,
                "ratios": ratios,
            }
        )
    )


if __name__ == "__main__":
    main()
