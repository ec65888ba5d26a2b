from __future__ import annotations

import pytest
from tests.support.people import PASSWORD, MakePerson, Person, person

__all__ = ["PASSWORD", "MakePerson", "Person", "person"]  # shared with this folder's tests


# Two points in Shanghai ~600 m apart, and one ~3 km away.
PEOPLES_SQUARE = (31.2304, 121.4737)
NANJING_ROAD = (31.2352, 121.4770)
THE_BUND = (31.2400, 121.4900)


@pytest.fixture
async def li(person: MakePerson) -> Person:
    return await person("+8613800138000", "Li Wei")


@pytest.fixture
async def yuki(person: MakePerson) -> Person:
    return await person("+819012345678", "Sato Yuki")
