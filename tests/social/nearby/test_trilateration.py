"""The trilateration attack, shipped as a test (docs/SOCIAL_NEARBY.md states the bound).

The same attack (tests/social/nearby/attack.py) is run against three oracles:
- bands of the *true* distance (what rounding gives): it locates people to about a metre,
  which shows the harness is able to find a leak;
- the privacy grid's answer for many victims (cheap, no database);
- the real service (database, speed limit, several colluding accounts) for a few victims.
Bound: the median error is at least 250 m (an H3 resolution-8 cell; the attacker learns the
cell and nothing inside it).
"""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

import pytest
from fastapi import FastAPI
from tests.social.nearby.attack import BandOf, Point, errors_of, median, offset

from omo.core.clock import ManualClock
from omo.core.ratelimit import Limit
from omo.social.nearby.grid import band, cell_distance, centre, metres, snap

BOUND_M = 250.0
SHANGHAI = (31.2304, 121.4737)


def scenario(count: int, seed: int) -> tuple[list[Point], list[Point]]:
    """Victims spread over ~20 km of a city; the attacker first sees each within ~600 m."""
    rng = random.Random(seed)
    victims = [
        offset(SHANGHAI, rng.uniform(-10_000, 10_000), rng.uniform(-10_000, 10_000))
        for _ in range(count)
    ]
    sightings = [offset(v, rng.uniform(-400, 400), rng.uniform(-400, 400)) for v in victims]
    return victims, sightings


async def test_the_attack_locates_people_to_a_metre_against_bands_of_true_distance() -> None:
    victims, sightings = scenario(50, seed=7)

    async def true_distance(victim: Point) -> BandOf:
        async def band_of(point: Point) -> str | None:
            return band(metres(point, victim))

        return band_of

    errors = await errors_of(victims, sightings, true_distance)
    assert median(errors) < 5
    assert max(errors) < 50


async def test_the_grid_keeps_every_victim_to_the_precision_of_their_cell() -> None:
    victims, sightings = scenario(300, seed=11)

    async def on_the_grid(victim: Point) -> BandOf:
        victim_cell = snap(*victim)

        async def band_of(point: Point) -> str | None:
            return band(cell_distance(snap(*point), victim_cell))

        return band_of

    errors = await errors_of(victims, sightings, on_the_grid, steps=16)
    assert median(errors) >= BOUND_M
    # Nothing better than the cell: the estimate is (about) the cell's centre, so a victim is
    # found closely only when they happen to stand near their cell's centre.
    to_centre = [metres(v, centre(snap(*v))) for v in victims]
    assert median(errors) >= 0.8 * median(to_centre)


@pytest.mark.parametrize("colluders", [4])
async def test_the_service_cannot_be_trilaterated_by_colluding_accounts_within_the_speed_limit(
    app: FastAPI, clock: ManualClock, colluders: int
) -> None:
    identity, nearby = app.state.identity, app.state.nearby
    # The strongest attacker: no query budget at all (the rate limit would only slow it).
    nearby.config = dataclasses.replace(
        nearby.config, queries=Limit("nearby-harness", 1_000_000, 60)
    )
    speed = nearby.config.max_speed_kmh / 3.6
    victim = await identity.ensure_person("+8613800138000", "correct horse", "Victim")
    attackers = [
        await identity.ensure_person(f"+3361234560{i}", "correct horse", f"Attacker {i}")
        for i in range(colluders)
    ]
    victims, sightings = scenario(8, seed=23)
    last: dict[int, Point] = {}
    turn = 0

    async def through_the_service(where: Point) -> BandOf:
        clock.advance(hours=13)  # the previous round's visibility is over; any trip is done
        await nearby.turn_on(victim, *where, duration=timedelta(hours=12))
        start = sightings[victims.index(where)]
        for attacker in attackers:
            await nearby.turn_on(attacker, *start, duration=timedelta(hours=12))
            last[attacker.int] = start

        async def band_of(point: Point) -> str | None:
            nonlocal turn
            attacker = attackers[turn % len(attackers)]
            turn += 1
            # Honest travel: wait as long as the move takes at the speed limit.
            clock.advance(seconds=metres(last[attacker.int], point) / speed + 1)
            last[attacker.int] = point
            _, people = await nearby.people(attacker, *point)
            bands = [p.band for p in people if p.profile.display_name == "Victim"]
            return bands[0] if bands else None

        return band_of

    errors = await errors_of(victims, sightings, through_the_service, rays=8, steps=10)
    assert median(errors) >= BOUND_M
