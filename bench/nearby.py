"""People Nearby at a million people: the 20 nearest within 5 km.

    python bench/nearby.py [--people 1000000] [--queries 2000] [--area-km 100]
                           [--redis-url redis://127.0.0.1:6379/0] [--check 200]

People are spread uniformly over an area-km × area-km square (Shanghai at its centre).
OMO: each person is snapped to their H3 cell and loaded into the service's per-node cell
index (what `NearbyService.reload` does from the database); a query is
`NearbyService.around(cell)` — the read path of POST /api/v1/nearby/people/search.
Peer: Redis GEOSEARCH FROMLONLAT BYRADIUS 5 km ASC COUNT 20 on the same (raw) points.
Limit: scipy cKDTree.query(k=20) on the same raw points (unit-sphere chords), in process.
Checks, on `--check` queries: OMO's 20 equal the exact 20 on the privacy grid (brute force
over every person's cell centre, ties by handle), and every one of them is truly within
the 20th exact true distance plus the grid's blur (two cell radii).
Latencies are wall-clock; `*_cpu_*` figures are the thread's CPU time for the same calls
(on a shared machine, preemption shows in wall-clock p99 but not there).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import h3
import numpy as np
import redis
from scipy.spatial import cKDTree

from omo.core.broker import MemoryBroker
from omo.core.clock import SystemClock
from omo.core.db import Database
from omo.social.nearby.grid import Entry, centre
from omo.social.nearby.service import NearbyService

CENTRE = (31.2304, 121.4737)
EARTH_M = 6_371_008.8


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def points(count: int, area_km: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    half = area_km * 500
    north = rng.uniform(-half, half, count)
    east = rng.uniform(-half, half, count)
    lat = CENTRE[0] + north / 111_320.0
    lng = CENTRE[1] + east / (111_320.0 * math.cos(math.radians(CENTRE[0])))
    return lat, lng


def unit(lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lng)
    return np.column_stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)))


def haversine(lat1: float, lng1: float, lat2: np.ndarray, lng2: np.ndarray) -> np.ndarray:
    p1, p2 = math.radians(lat1), np.radians(lat2)
    h = (
        np.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * np.cos(p2) * np.sin((np.radians(lng2) - math.radians(lng1)) / 2) ** 2
    )
    return np.asarray(2 * EARTH_M * np.arcsin(np.minimum(1.0, np.sqrt(h))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--area-km", type=float, default=100.0)
    parser.add_argument("--radius-m", type=float, default=5000.0)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--check", type=int, default=200)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    rng = np.random.default_rng(2026)

    lat, lng = points(args.people, args.area_km, rng)
    qlat, qlng = points(args.queries, args.area_km * 0.8, rng)
    ids = [uuid.UUID(int=i + 1) for i in range(args.people)]
    handles = [secrets.token_urlsafe(12) for _ in range(args.people)]

    # -- OMO: the service's cell index -----------------------------------------------------
    started = time.perf_counter()
    cells = [h3.latlng_to_cell(a, b, 8) for a, b in zip(lat.tolist(), lng.tolist(), strict=True)]
    until = time.time() + 4 * 3600
    folder = tempfile.mkdtemp()
    db = Database(f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}")
    service = NearbyService(
        db=db,
        clock=SystemClock(),
        broker=MemoryBroker(),
        identity=None,  # type: ignore[arg-type]  (the read path touches neither)
        messaging=None,  # type: ignore[arg-type]
        secret=b"bench",
    )
    service.index.load(Entry(h, i, c, until) for h, i, c in zip(handles, ids, cells, strict=True))
    gc.freeze()  # as NearbyService.reload does: the index is long-lived, not garbage
    load_seconds = time.perf_counter() - started
    qcells = [h3.latlng_to_cell(a, b, 8) for a, b in zip(qlat.tolist(), qlng.tolist(), strict=True)]
    for cell in qcells[:50]:  # warm the caches of cell centres and steps
        service.around(cell)
    omo_ms: list[float] = []
    omo_cpu_ms: list[float] = []
    answers: list[list[Any]] = []
    for cell in qcells:
        t, c = time.perf_counter(), time.thread_time()
        found = service.around(cell)
        omo_cpu_ms.append((time.thread_time() - c) * 1000)
        omo_ms.append((time.perf_counter() - t) * 1000)
        answers.append(found)

    # -- exactness on the grid, and the blur against true distances ---------------------------
    cell_lat = np.empty(args.people)
    cell_lng = np.empty(args.people)
    for i, cell in enumerate(cells):
        cell_lat[i], cell_lng[i] = centre(cell)
    handle_rank = np.argsort(np.argsort(np.array(handles, dtype=object)))
    exact = 0
    blurred_ok = 0
    blur_m = 2 * h3.average_hexagon_edge_length(8, "m") * 1.2
    checks = min(args.check, args.queries)
    for q in range(checks):
        clat, clng = centre(qcells[q])
        d = haversine(clat, clng, cell_lat, cell_lng)
        inside = np.nonzero(d < args.radius_m)[0]
        order = inside[np.lexsort((handle_rank[inside], np.round(d[inside], 6)))][: args.k]
        want = sorted(round(float(d[i]), 3) for i in order)
        got = sorted(round(f.distance_m, 3) for f in answers[q])
        same_people = {ids[i] for i in order} == {f.entry.user_id for f in answers[q]}
        exact += int(same_people or want == got)
        true_d = haversine(float(qlat[q]), float(qlng[q]), lat, lng)
        kth = np.partition(true_d, args.k)[args.k - 1]
        index_of = {f.entry.user_id.int - 1 for f in answers[q]}
        blurred_ok += int(all(true_d[i] <= kth + blur_m for i in index_of))

    # -- limit: cKDTree ---------------------------------------------------------------------
    tree = cKDTree(unit(lat, lng))
    chord = 2 * math.sin(args.radius_m / EARTH_M / 2)
    qxyz = unit(qlat, qlng)
    kd_ms: list[float] = []
    kd_cpu_ms: list[float] = []
    for row in qxyz:
        t, c = time.perf_counter(), time.thread_time()
        tree.query(row, k=args.k, distance_upper_bound=chord)
        kd_cpu_ms.append((time.thread_time() - c) * 1000)
        kd_ms.append((time.perf_counter() - t) * 1000)

    # -- peer: Redis GEOSEARCH --------------------------------------------------------------
    client = redis.Redis.from_url(args.redis_url)
    key = f"omobench:nearby:{uuid.uuid4().hex[:8]}"
    redis_ms: list[float] = []
    try:
        batch = 20_000
        for start in range(0, args.people, batch):
            values: list[Any] = []
            for i in range(start, min(args.people, start + batch)):
                values += [float(lng[i]), float(lat[i]), i]
            client.execute_command("GEOADD", key, *values)
        for a, b in zip(qlat.tolist(), qlng.tolist(), strict=True):
            t = time.perf_counter()
            client.execute_command(
                "GEOSEARCH", key, "FROMLONLAT", b, a, "BYRADIUS", args.radius_m, "m",
                "ASC", "COUNT", args.k,
            )  # fmt: skip
            redis_ms.append((time.perf_counter() - t) * 1000)
    finally:
        client.delete(key)
        client.close()

    figures = {
        "people": args.people,
        "queries": args.queries,
        "area_km": args.area_km,
        "index_load_s": round(load_seconds, 1),
        "omo_p50_ms": round(percentile(omo_ms, 50), 3),
        "omo_p99_ms": round(percentile(omo_ms, 99), 3),
        "omo_cpu_p99_ms": round(percentile(omo_cpu_ms, 99), 3),
        "redis_geosearch_p50_ms": round(percentile(redis_ms, 50), 3),
        "redis_geosearch_p99_ms": round(percentile(redis_ms, 99), 3),
        "ckdtree_p50_ms": round(percentile(kd_ms, 50), 3),
        "ckdtree_p99_ms": round(percentile(kd_ms, 99), 3),
        "ckdtree_cpu_p99_ms": round(percentile(kd_cpu_ms, 99), 3),
        "exact_on_grid": f"{exact}/{checks}",
        "within_true_kth_plus_blur": f"{blurred_ok}/{checks}",
        "avg_results": round(sum(len(a) for a in answers) / len(answers), 1),
    }
    ratios = {
        "omo_vs_redis_geosearch_p99": round(
            figures["redis_geosearch_p99_ms"] / figures["omo_p99_ms"], 2
        ),  # type: ignore[operator]
        "omo_vs_ckdtree_p99": round(figures["ckdtree_p99_ms"] / figures["omo_p99_ms"], 2),  # type: ignore[operator]
    }
    print(json.dumps({"bench": "nearby", "figures": figures, "ratios": ratios}))


if __name__ == "__main__":
    main()
