"""Mini program package upload + validation of a 1 MiB zip (goal < 200 ms).

Builds a package just under the 1 MiB limit (packed and unpacked: mostly incompressible
image bytes, plus pages and scripts), then measures, in the same run:
- `validate`: reading the zip defensively and checking the manifest (omo.miniapps.package);
- `bare_unzip`: the floor — the standard library reading every member once (CRC checked);
- `upload`: the developer API end to end (HTTP Basic appid+secret → validation → the
  version stored in SQLite), through the ASGI app in process.
Ratios: the goal (200 ms) over OMO's p50, and the bare unzip over OMO's validation.
Runtime figures (launch cold/warm, bridge round trip) come once the runtime exists.

    .venv/bin/python bench/miniapps.py [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from omo import migrations
from omo.app import create_app
from omo.core.config import Settings
from omo.miniapps.package import MAX_PACKAGE_BYTES, build_zip, load_package

GOAL_MS = 200.0


def files_for(appid: str, code: int) -> dict[str, bytes]:
    rng = random.Random(code)
    files: dict[str, bytes] = {
        "manifest.json": json.dumps(
            {
                "app_id": appid,
                "name": "Bench",
                "icons": [{"src": "img/icon.png"}],
                "pages": [f"pages/p{i}" for i in range(20)],
                "platform_version": {"min_code": 1},
                "version": {"code": code, "name": f"1.{code}"},
                "req_permissions": [{"name": "payment", "reason": "To pay"}],
            }
        ).encode(),
        "img/icon.png": b"\x89PNG" + bytes(100),
    }
    for i in range(20):
        files[f"pages/p{i}.html"] = (f"<!doctype html><title>{i}</title>" * 200).encode()
        files[f"js/p{i}.js"] = (f"export const page{i} = {i};\n" * 300).encode()
    used = sum(len(v) for v in files.values())
    # Incompressible bytes fill the rest, so packed and unpacked sizes are both near 1 MiB.
    files["img/photo.png"] = rng.randbytes(MAX_PACKAGE_BYTES - used - 8 * 1024)
    return files


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def upload_run(runs: int, folder: Path) -> tuple[list[float], int]:
    settings = Settings(data_dir=folder, secret_key="bench", redis_url=None)  # type: ignore[call-arg]
    migrations.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    async with LifespanManager(app):
        user = await app.state.identity.ensure_person("+393401234567", "bench pass 123", "B")
        org = await app.state.accounts.create_organisation(user, "Bench")
        created = await app.state.miniapps.register_app(user, org.id, "Bench")
        appid, secret = created.app.appid, created.secret
        token = base64.b64encode(f"{appid}:{secret}".encode()).decode()
        zips = [build_zip(files_for(appid, code)) for code in range(1, runs + 2)]
        transport = httpx.ASGITransport(app=app)
        timings: list[float] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for index, data in enumerate(zips):
                start = time.perf_counter()
                response = await http.post(
                    f"/api/v1/miniapps/dev/{appid}/versions",
                    content=data,
                    headers={"Authorization": f"Basic {token}", "Content-Type": "application/zip"},
                )
                elapsed = (time.perf_counter() - start) * 1000
                assert response.status_code == 201, response.text
                if index:  # the first one warms the connection pool and caches
                    timings.append(elapsed)
        return timings, len(zips[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    data = build_zip(files_for("mpbench000000000", 1))
    validate: list[float] = []
    bare: list[float] = []
    for _ in range(args.runs):
        start = time.perf_counter()
        package = load_package(data)
        validate.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                archive.read(info)
        bare.append((time.perf_counter() - start) * 1000)
    with tempfile.TemporaryDirectory() as folder:
        uploads, packed = asyncio.run(upload_run(args.runs, Path(folder)))
    figures = {
        "package_packed_bytes": packed,
        "package_unpacked_bytes": package.unpacked_size,
        "validate_p50_ms": round(statistics.median(validate), 2),
        "bare_unzip_p50_ms": round(statistics.median(bare), 2),
        "upload_p50_ms": round(statistics.median(uploads), 2),
        "upload_p95_ms": round(percentile(uploads, 0.95), 2),
        "runs": args.runs,
        "cpus": os.cpu_count(),
    }
    ratios = {
        "omo_vs_goal_200ms": round(GOAL_MS / figures["upload_p50_ms"], 2),
        "omo_vs_bare_unzip": round(figures["bare_unzip_p50_ms"] / figures["validate_p50_ms"], 2),
    }
    print(json.dumps({"bench": "miniapps", "figures": figures, "ratios": ratios}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
