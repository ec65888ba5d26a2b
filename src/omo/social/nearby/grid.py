"""The privacy grid and the in-memory cell index of People Nearby.

A person is snapped to an H3 cell (resolution 8: hexagons of ~0.7 km², ~460 m edge) the
moment their position arrives; only the cell is kept. Every answer is a function of the
querier's cell and the other people's cells — never of a position inside a cell — so
querying from many points cannot locate anyone more precisely than their cell:

- distances are measured between cell centres and shown as coarse bands;
- who is listed (the nearest by cell-centre distance, ties broken by a random handle) and
  the order they are listed in (band, then a keyed hash of querier cell and handle, not the
  distance) depend only on cells, so the same query cell always gets the same answer.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import h3

RESOLUTION = 8
EARTH_RADIUS_M = 6_371_008.8

# (upper bound in metres between cell centres, band id): the only distances anyone sees.
BANDS: tuple[tuple[float, str], ...] = ((1000.0, "1km"), (2000.0, "2km"), (5000.0, "5km"))


def snap(latitude: float, longitude: float, resolution: int = RESOLUTION) -> str:
    """The cell a position falls in; the position itself is not kept anywhere."""
    return str(h3.latlng_to_cell(latitude, longitude, resolution))


@lru_cache(maxsize=200_000)
def centre(cell: str) -> tuple[float, float]:
    lat, lng = h3.cell_to_latlng(cell)
    return float(lat), float(lng)


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) between two (lat, lng) points in degrees."""
    lat1, lng1 = math.radians(a[0]), math.radians(a[1])
    lat2, lng2 = math.radians(b[0]), math.radians(b[1])
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def cell_distance(a: str, b: str) -> float:
    return 0.0 if a == b else metres(centre(a), centre(b))


def band(distance_m: float) -> str | None:
    for upper, name in BANDS:
        if distance_m < upper:
            return name
    return None


@lru_cache(maxsize=50_000)
def _step(cell: str) -> float:
    """A lower bound of the centre distance between `cell` and any cell k rings away, per k."""
    neighbours = [c for c in h3.grid_ring(cell, 1) if c != cell]
    nearest = min(cell_distance(cell, c) for c in neighbours)
    # Centres k rings away are at least k·(√3/2)·step apart on a hex grid; 0.9 absorbs the
    # grid's distortion over a few kilometres.
    return nearest * math.sqrt(3) / 2 * 0.9


def _ring(cell: str, k: int) -> list[str]:
    try:
        return list(h3.grid_ring(cell, k))
    except h3.H3BaseException:  # pentagon distortion: fall back to the disk difference
        inner = set(h3.grid_disk(cell, k - 1)) if k else set()
        return [c for c in h3.grid_disk(cell, k) if c not in inner]


def disk(cell: str, radius_m: float) -> list[str]:
    """Every cell whose centre may lie within `radius_m` of `cell`'s centre."""
    return list(h3.grid_disk(cell, math.ceil(radius_m / _step(cell))))


def neighbours(cell: str) -> list[str]:
    """The cell and the six around it."""
    return list(h3.grid_disk(cell, 1))


def order_key(secret: bytes, query_cell: str, handle: str) -> bytes:
    """The listing order inside a band: keyed, so it says nothing about true distance."""
    return hmac.new(secret, f"{query_cell}/{handle}".encode(), hashlib.sha256).digest()[:8]


@dataclass(frozen=True, slots=True)
class Entry:
    handle: str
    user_id: uuid.UUID
    cell: str
    until: float  # POSIX seconds


@dataclass(frozen=True, slots=True)
class Found:
    entry: Entry
    distance_m: float  # between cell centres

    @property
    def band(self) -> str:
        name = band(self.distance_m)
        assert name is not None
        return name


@dataclass
class CellIndex:
    """Visible people by cell, each cell's people sorted by handle. One per node: filled from
    the database at start and kept current by the index messages every node publishes."""

    cells: dict[str, list[tuple[str, Entry]]] = field(default_factory=dict)
    by_user: dict[uuid.UUID, Entry] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.by_user)

    def put(self, entry: Entry) -> None:
        self.remove(entry.user_id)
        bisect.insort(self.cells.setdefault(entry.cell, []), (entry.handle, entry))
        self.by_user[entry.user_id] = entry

    def remove(self, user_id: uuid.UUID) -> None:
        old = self.by_user.pop(user_id, None)
        if old is None:
            return
        people = self.cells.get(old.cell, [])
        at = bisect.bisect_left(people, (old.handle,))
        while at < len(people) and people[at][0] == old.handle:
            if people[at][1].user_id == user_id:
                del people[at]
                break
            at += 1
        if not people:
            self.cells.pop(old.cell, None)

    def expire(self, now: float) -> int:
        gone = [e.user_id for e in self.by_user.values() if e.until <= now]
        for user_id in gone:
            self.remove(user_id)
        return len(gone)

    def load(self, entries: Iterable[Entry]) -> None:
        self.cells.clear()
        self.by_user.clear()
        for entry in entries:
            self.by_user[entry.user_id] = entry
            self.cells.setdefault(entry.cell, []).append((entry.handle, entry))
        for people in self.cells.values():
            people.sort()

    def nearest(
        self,
        origin: str,
        now: float,
        *,
        limit: int = 20,
        radius_m: float = BANDS[-1][0],
        exclude: uuid.UUID | None = None,
    ) -> list[Found]:
        """The `limit` visible people nearest to the cell `origin`, by cell-centre distance
        (ties: by handle), within `radius_m`; exact on the grid, ring by ring."""
        found: list[tuple[float, str, Entry]] = []
        step = _step(origin)
        k = 0
        while k * step <= radius_m:
            if len(found) >= limit:
                found.sort(key=lambda f: (f[0], f[1]))
                del found[limit:]
                if k * step > found[-1][0]:
                    break
            for cell in _ring(origin, k):
                people = self.cells.get(cell)
                if not people:
                    continue
                distance = cell_distance(origin, cell)
                if distance >= radius_m:
                    continue
                taken = 0
                for handle, entry in people:
                    if entry.until <= now or entry.user_id == exclude:
                        continue
                    found.append((distance, handle, entry))
                    taken += 1
                    if taken >= limit:
                        break
            k += 1
        found.sort(key=lambda f: (f[0], f[1]))
        return [Found(entry, distance) for distance, _, entry in found[:limit]]


def listing(secret: bytes, origin: str, found: list[Found]) -> list[Found]:
    """What the person sees: by band, and inside a band in a keyed order — not by distance."""
    names = [name for _, name in BANDS]
    return sorted(
        found, key=lambda f: (names.index(f.band), order_key(secret, origin, f.entry.handle))
    )
