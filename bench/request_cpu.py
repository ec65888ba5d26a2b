"""Server CPU per request, in process: the fixed cost every authenticated route pays.

    python bench/request_cpu.py KEPT_DIR [--requests 2000] [--payments 300] [--profile PHASE]

KEPT_DIR is a world seeded by `bench/flash_sale.py --keep KEPT_DIR --seed-only`. The whole
ASGI app (middleware, routing, authentication, the route, JSON) is called directly, without
sockets or an HTTP client, so the CPU measured (`time.process_time`) is the server's alone:
uvicorn's HTTP parsing and socket writes come on top. Phases, each with `--requests` distinct
buyers' sessions:

- `health`: `GET /healthz`, no authentication (the floor of the stack);
- `claim_touch_due`: a sold-out flash-sale claim whose session was last seen 10 minutes ago
  (so "last seen" is due to be written, as for most buyers of a real sale);
- `claim`: the same claims again (last seen just written);
- `me`: `GET /api/v1/identity/me` (a cheap authenticated read);
- `me_bad_token`: the same with an unknown token (401);
- `code`, `scan`: a payment as `bench/payments.py` makes it, `--payments` times: the
  customer's `POST /api/v1/pay/codes`, then the cashier's scan of that code (10.00 EUR).

Work the server defers (a periodic "last seen" flush) is run and counted inside the phase
that caused it. Prints one JSON line; `--profile PHASE` prints a cProfile of that phase.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flash_sale import kept_settings
from sqlalchemy import text

from omo.app import create_app
from omo.core.money import Money

Call = Callable[..., Awaitable[tuple[int, bytes]]]


def caller(app: Any) -> Call:
    async def call(
        method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes]:
        status, answer = 0, b""
        data = json.dumps(body).encode() if body is not None else b""
        headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(data)).encode())]
        if data:
            headers.append((b"content-type", b"application/json"))
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": data, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, answer
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                answer += message.get("body", b"")

        await app(scope, receive, send)
        return status, answer

    return call


async def main(folder: str, requests: int, payments: int, profile: str | None) -> None:
    settings = kept_settings(Path(folder), None)
    world = json.loads((Path(folder) / "world.json").read_text())
    tokens: list[str] = world["tokens"][: requests + 1]
    app = create_app(settings)
    figures: dict[str, Any] = {"requests": len(tokens) - 1, "load_average": os.getloadavg()[0]}
    async with app.router.lifespan_context(app):
        call = caller(app)
        sale = await app.state.coupons.create_sale(
            merchant=world["merchant_id"],
            store=None,
            product="bag",
            price=Money.of("12.00", "EUR"),
            stock=1,
            starts_at=datetime.now(UTC) - timedelta(seconds=1),
            hold_seconds=600,
            per_user_limit=1,
        )
        claim = f"/api/v1/coupons/flash-sales/{sale.id}/reservations"
        assert (await call("POST", claim, tokens[0]))[0] == 201
        tokens = tokens[1:]
        identity = app.state.identity

        async def flush() -> None:
            # The server's deferred "last seen" writes belong to the phase that caused them.
            if hasattr(identity, "flush_touches"):
                await identity.flush_touches()

        async def age_sessions() -> None:
            await flush()
            ago = datetime.now(UTC) - timedelta(minutes=10)
            async with app.state.db.transaction() as session:
                await session.execute(
                    text("UPDATE identity_sessions SET last_seen_at = :ago"), {"ago": ago}
                )

        phases: list[tuple[str, str, str, list[str], int]] = [
            ("health", "GET", "/healthz", ["" for _ in tokens], 200),
            ("claim_touch_due", "POST", claim, tokens, 409),
            ("claim", "POST", claim, tokens, 409),
            ("me", "GET", "/api/v1/identity/me", tokens, 200),
            ("me_bad_token", "GET", "/api/v1/identity/me", ["x" + t for t in tokens], 401),
        ]
        for name, method, path, used, expected in phases:
            if name == "claim_touch_due":
                await age_sessions()
            await call(method, path, used[0])  # warm the statement caches
            profiler = cProfile.Profile() if profile == name else None
            if profiler:
                profiler.enable()
            cpu, wall = time.process_time(), time.perf_counter()
            statuses = [(await call(method, path, token))[0] for token in used]
            await flush()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if profiler:
                profiler.disable()
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(50)
            assert set(statuses) == {expected}, (name, set(statuses))
            figures[f"{name}_us_cpu"] = round(cpu / len(used) * 1e6)
            figures[f"{name}_us_wall"] = round(wall / len(used) * 1e6)
        if payments:
            await pay(app, call, world, tokens[:payments], figures, profile)
    print(json.dumps({"bench": "request-cpu", "figures": figures}))


async def pay(
    app: Any,
    call: Call,
    world: dict[str, Any],
    tokens: list[str],
    figures: dict[str, Any],
    profile: str | None,
) -> None:
    """A payment as `bench/payments.py` makes it: the customer's code, the cashier's scan."""
    ids = dict(zip(world["tokens"], world["ids"], strict=True))
    for token in tokens:
        for attempt in range(5):
            topped = await app.state.pay.top_up(
                uuid.UUID(ids[token]),
                f"cpu-{uuid.uuid4().hex}",
                f"BENCH-{ids[token]}-{attempt}",
                Money.of("20.00", "EUR"),
            )
            if topped.status == "succeeded":
                break
    charge = f"/api/v1/pay/merchants/{world['merchant_id']}/payments"
    codes: list[str] = []
    for phase in ("code", "scan"):
        profiler = cProfile.Profile() if profile == phase else None
        if profiler:
            profiler.enable()
        cpu = time.process_time()
        for index, token in enumerate(tokens):
            if phase == "code":
                status, body = await call("POST", "/api/v1/pay/codes", token)
                assert status == 201, body
                codes.append(json.loads(body)["code"])
            else:
                order = {
                    "code": codes[index],
                    "amount": "10.00",
                    "currency": "EUR",
                    "order_id": uuid.uuid4().hex,
                }
                status, body = await call("POST", charge, world["owner_token"], order)
                assert status == 200, body
        cpu = time.process_time() - cpu
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(70)
        figures[f"{phase}_us_cpu"] = round(cpu / len(tokens) * 1e6)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--payments", type=int, default=300, help="code + scan pairs")
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.folder, args.requests, args.payments, args.profile))
