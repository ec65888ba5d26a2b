"""Matrix Synapse as the messaging benchmark's peer: the same N sender/receiver pairs, each pair
in a 1:1 room; senders use the client-server send API with up to `window` messages in flight
(each PUT answers once the event is persisted), receivers long-poll /sync. Synapse runs from
PyPI in its own virtualenv (`make bench-synapse` makes `.venv-synapse`; or point
OMO_BENCH_SYNAPSE_PYTHON at another interpreter), on SQLite, loopback only, presence off and
every rate limit raised so that it is measured, not throttled.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import multiprocessing
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SECRET = "omo-bench-shared-secret"
UNLIMITED = "{per_second: 100000, burst_count: 100000}"
OVERRIDES = f"""
# -- the benchmark's settings (later keys win) --
listeners:
  - port: {{port}}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
registration_shared_secret: "{SECRET}"
trusted_key_servers: []
suppress_key_server_warning: true
presence:
  enabled: false
rc_message: {UNLIMITED}
rc_registration: {UNLIMITED}
rc_room_creation: {UNLIMITED}
rc_login:
  address: {UNLIMITED}
  account: {UNLIMITED}
  failed_attempts: {UNLIMITED}
rc_joins:
  local: {UNLIMITED}
  remote: {UNLIMITED}
rc_invites:
  per_room: {UNLIMITED}
  per_user: {UNLIMITED}
  per_issuer: {UNLIMITED}
"""


@dataclass
class Room:
    room_id: str
    sender_token: str
    receiver_token: str


def synapse_python(repo: Path) -> str | None:
    configured = os.environ.get("OMO_BENCH_SYNAPSE_PYTHON")
    if configured:
        return configured
    candidate = repo / ".venv-synapse" / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(python: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = folder / "homeserver.yaml"
    generate = ["--config-path", str(config), "--generate-config", "--report-stats=no"]
    subprocess.run(
        [python, "-m", "synapse.app.homeserver", "--server-name", "localhost", *generate],
        check=True,
        capture_output=True,
        cwd=folder,
    )
    port = _free_port()
    with config.open("a") as settings:
        settings.write(OVERRIDES.replace("{port}", str(port)))
    log = (folder / "synapse.out").open("w")
    process = subprocess.Popen(
        [python, "-m", "synapse.app.homeserver", "-c", str(config)],
        cwd=folder,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("synapse exited:\n" + (folder / "synapse.out").read_text())
        try:
            if httpx.get(url + "/_matrix/client/versions", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("synapse did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


async def _register(client: httpx.AsyncClient, name: str) -> str:
    """A user through the shared-secret admin API; answers its access token."""
    nonce = (await client.get("/_synapse/admin/v1/register")).json()["nonce"]
    password = "bench password"
    mac = hmac.new(
        SECRET.encode(), f"{nonce}\0{name}\0{password}\0notadmin".encode(), hashlib.sha1
    ).hexdigest()
    answer = await client.post(
        "/_synapse/admin/v1/register",
        json={"nonce": nonce, "username": name, "password": password, "admin": False, "mac": mac},
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


async def setup_rooms(url: str, pairs: int) -> list[Room]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        rooms = []
        for n in range(pairs):
            sender = await _register(client, f"sender{n}")
            receiver = await _register(client, f"receiver{n}")
            created = await client.post(
                "/_matrix/client/v3/createRoom",
                json={
                    "preset": "trusted_private_chat",
                    "is_direct": True,
                    "invite": [f"@receiver{n}:localhost"],
                },
                headers={"Authorization": f"Bearer {sender}"},
            )
            created.raise_for_status()
            room = created.json()["room_id"]
            joined = await client.post(
                f"/_matrix/client/v3/join/{room}", headers={"Authorization": f"Bearer {receiver}"}
            )
            joined.raise_for_status()
            rooms.append(Room(room, sender, receiver))
        return rooms


SYNC_FILTER = (
    '{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},'
    '"room":{"timeline":{"limit":200,"types":["m.room.message"]},'
    '"state":{"not_types":["*"]},"ephemeral":{"not_types":["*"]},'
    '"account_data":{"not_types":["*"]}}}'
)


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _load(url: str, rooms: list[Room], seconds: float, window: int) -> dict[str, Any]:
    latencies: list[float] = []
    delivered = 0
    measuring = False
    stop_event = asyncio.Event()
    limits = httpx.Limits(max_connections=len(rooms) * (window + 2))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def receiver(room: Room) -> None:
            nonlocal delivered
            auth = {"Authorization": f"Bearer {room.receiver_token}"}
            first = await client.get(
                "/_matrix/client/v3/sync", params={"filter": SYNC_FILTER}, headers=auth
            )
            since = first.json()["next_batch"]
            while not stop_event.is_set():
                answer = await client.get(
                    "/_matrix/client/v3/sync",
                    params={"filter": SYNC_FILTER, "since": since, "timeout": 30000},
                    headers=auth,
                )
                body = answer.json()
                since = body["next_batch"]
                for joined in body.get("rooms", {}).get("join", {}).values():
                    for event in joined.get("timeline", {}).get("events", []):
                        sent_at = float(event["content"]["body"].split(" ", 1)[0])
                        if measuring:
                            latencies.append(time.perf_counter() - sent_at)
                            delivered += 1

        async def sender(room: Room, lane: int) -> None:
            auth = {"Authorization": f"Bearer {room.sender_token}"}
            n = 0
            while not stop_event.is_set():
                n += 1
                body = {"msgtype": "m.text", "body": f"{time.perf_counter()} hello from the bench"}
                await client.put(
                    f"/_matrix/client/v3/rooms/{room.room_id}/send/m.room.message/{lane}-{n}",
                    json=body,
                    headers=auth,
                )

        tasks = [asyncio.create_task(receiver(room)) for room in rooms]
        tasks += [
            asyncio.create_task(sender(room, lane)) for room in rooms for lane in range(window)
        ]
        await asyncio.sleep(min(2.0, seconds / 4))
        measuring = True
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        measuring = False
        elapsed = time.perf_counter() - started
        stop_event.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    return {
        "delivered_per_s": round(delivered / elapsed, 1),
        "p50_ms": None if p50 is None else round(p50 * 1000, 2),
        "p99_ms": None if p99 is None else round(p99 * 1000, 2),
        "delivered": delivered,
    }


def _load_process(url: str, rooms: list[Room], seconds: float, window: int, out: Any) -> None:
    out.put(asyncio.run(_load(url, rooms, seconds, window)))


def measure(repo: Path, folder: Path, pairs: int, seconds: float, window: int) -> dict[str, Any]:
    """Synapse's figures on the benchmark's work, or why it was not measured."""
    python = synapse_python(repo)
    if python is None:
        return {"skipped": "Synapse is not installed: run `make bench-synapse`"}
    process, url = start(python, folder)
    try:
        rooms = asyncio.run(setup_rooms(url, pairs))
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        loader = context.Process(target=_load_process, args=(url, rooms, seconds, window, out))
        loader.start()
        result: dict[str, Any] = out.get(timeout=seconds + 300)
        loader.join(30)
        return result
    finally:
        stop(process)
