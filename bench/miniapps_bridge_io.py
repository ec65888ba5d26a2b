"""The mini program bridge's two network calls: `request` (the host fetches from the mini
program's registered server) and the scanner's decoder.

Measured in the same run, through the ASGI app in process (a person's session, privacy
notice accepted, the origin registered):
- `request`: `POST /api/v1/miniapps/launch/{appid}/request` to a JSON endpoint of a backend
  on loopback (uvicorn, same event loop) — against `bare_fetch`, the same GET made directly
  with a new httpx client sharing one TLS context (what the host must do at least: a new
  client per call, so no cookie jar or connection is shared between people);
- `decode`: `POST /api/v1/miniapps/scanner/decode` of a 640×480 JPEG camera still holding a
  QR code — against `bare_decode`, zxing-cpp reading the same JPEG opened with Pillow (the
  floor: the library alone).
Ratios (> 1 = OMO better): bare p50 over OMO's p50 for each.

    .venv/bin/python bench/miniapps_bridge_io.py [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import ssl
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import segno
import uvicorn
import zxingcpp
from asgi_lifespan import LifespanManager
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omo import migrations
from omo.app import create_app
from omo.core.config import Settings
from omo.miniapps.package import build_zip

TLS = ssl.create_default_context()  # built once, as the host does
MENU = {"items": [{"id": f"dish-{i}", "name": f"Dish {i}", "price": "8.50"} for i in range(20)]}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def camera_still(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=6, border=4)
    code = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    side = min(code.width, 440)
    picture = Image.new("RGB", (640, 480), (200, 200, 200))
    picture.paste(code.resize((side, side)).convert("RGB"), ((640 - side) // 2, 20))
    still = io.BytesIO()
    picture.save(still, format="JPEG", quality=85)
    return still.getvalue()


def package(appid: str) -> bytes:
    manifest = {
        "app_id": appid,
        "name": "Bench",
        "icons": [{"src": "icon.png"}],
        "pages": ["pages/index"],
        "platform_version": {"min_code": 1},
        "version": {"code": 1, "name": "1.0"},
        "req_permissions": [{"name": "camera", "reason": "To scan"}],
    }
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    return build_zip(
        {
            "manifest.json": json.dumps(manifest).encode(),
            "icon.png": buffer.getvalue(),
            "pages/index.html": b"<!doctype html><title>x</title>",
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(runs: int, folder: Path) -> dict[str, float]:
    settings = Settings(  # type: ignore[call-arg]
        data_dir=folder, secret_key="bench", redis_url=None, webhooks_to_private_networks=True
    )
    migrations.upgrade(settings.resolved_database_url)

    async def menu(request: Request) -> Response:
        return JSONResponse(MENU)

    port = free_port()
    backend = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/api/menu", menu)]),
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
        )
    )
    serving = asyncio.create_task(backend.serve())
    while not backend.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    origin = f"http://127.0.0.1:{port}"

    app = create_app(settings)
    figures: dict[str, float] = {}
    async with LifespanManager(app):
        user = await app.state.identity.ensure_person("+393401234567", "bench pass 123", "B")
        org = await app.state.accounts.create_organisation(user, "Bench")
        created = await app.state.miniapps.register_app(user, org.id, "Bench")
        appid, app_id = created.app.appid, created.app.id
        version = await app.state.miniapps.upload(app_id, package(appid))
        await app.state.miniapps.start_trial(user, app_id, version.id)
        await app.state.miniapps.release(user, app_id, version.id)
        await app.state.miniapps.accept_privacy(appid, user)
        await app.state.miniapp_backend.set_origins(app_id, [origin])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            login = await http.post(
                "/api/v1/identity/login",
                json={"phone": "+393401234567", "password": "bench pass 123"},
            )
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            http.cookies.clear()

            async def through_omo() -> None:
                response = await http.post(
                    f"/api/v1/miniapps/launch/{appid}/request",
                    json={"url": f"{origin}/api/menu"},
                    headers=headers,
                )
                assert response.status_code == 200, response.text
                assert response.json()["data"] == MENU

            async def bare() -> None:
                async with httpx.AsyncClient(timeout=10, verify=TLS) as direct:
                    response = await direct.get(f"{origin}/api/menu")
                    assert response.json() == MENU

            omo_ms, bare_ms = await alternate(through_omo, bare, runs)
            figures.update(
                request_p50_ms=statistics.median(omo_ms),
                request_p99_ms=percentile(omo_ms, 0.99),
                bare_fetch_p50_ms=statistics.median(bare_ms),
            )

            still = camera_still(f"http://127.0.0.1:8000/mp/{appid}/pages/index?scene=t%3D12")

            async def decode() -> None:
                response = await http.post(
                    "/api/v1/miniapps/scanner/decode", content=still, headers=headers
                )
                assert response.status_code == 200, response.text
                assert response.json()["codes"], response.text

            async def bare_decode() -> None:
                found = zxingcpp.read_barcodes(Image.open(io.BytesIO(still)).convert("L"))
                assert found

            app.state.limiter = NoLimit()  # the decoder's per-person limit is not measured
            omo_ms, bare_ms = await alternate(decode, bare_decode, runs)
            figures.update(
                decode_p50_ms=statistics.median(omo_ms),
                decode_p99_ms=percentile(omo_ms, 0.99),
                bare_decode_p50_ms=statistics.median(bare_ms),
                still_bytes=len(still),
            )
    backend.should_exit = True
    await serving
    return figures


class NoLimit:
    async def hit(self, limit: object, key: str) -> None:
        return None


async def alternate(omo, bare, runs: int) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """Interleaved, so that the machine's load hits both alike; the first of each warms."""
    omo_ms: list[float] = []
    bare_ms: list[float] = []
    for index in range(runs + 1):
        for action, samples in ((omo, omo_ms), (bare, bare_ms)):
            start = time.perf_counter()
            await action()
            if index:
                samples.append((time.perf_counter() - start) * 1000)
    return omo_ms, bare_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(run(args.runs, Path(folder)))
    rounded = {k: round(v, 2) for k, v in figures.items()}
    ratios = {
        "omo_vs_bare_fetch": round(figures["bare_fetch_p50_ms"] / figures["request_p50_ms"], 3),
        "omo_vs_bare_decode": round(figures["bare_decode_p50_ms"] / figures["decode_p50_ms"], 3),
    }
    print(json.dumps({"bench": "miniapps-bridge-io", "figures": rounded, "ratios": ratios}))


if __name__ == "__main__":
    main()
