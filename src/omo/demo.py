"""The demo world: a few people (and, as capabilities land, their brands, shops and chats)."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from fastapi import FastAPI

from omo.contexts import CONTEXTS


@dataclass(frozen=True)
class DemoPerson:
    name: str
    phone: str
    omo_id: str


DEMO_PASSWORD = "omo-demo-2026"  # noqa: S105  (printed at start: a demo, not a secret)

PEOPLE = (
    DemoPerson("Li Wei", "+8613800138000", "liwei_demo"),
    DemoPerson("Giulia Rossi", "+393471234567", "giulia_demo"),
    DemoPerson("Camille Martin", "+33612345678", "camille_demo"),
    DemoPerson("Sato Yuki", "+819012345678", "yuki_demo"),
)


async def seed(app: FastAPI) -> tuple[DemoPerson, ...]:
    """Create the demo world inside a running app (idempotent: safe at every start)."""
    async with app.router.lifespan_context(app):
        for person in PEOPLE:
            await app.state.identity.ensure_person(
                person.phone, DEMO_PASSWORD, person.name, person.omo_id
            )
        for name in CONTEXTS:
            if importlib.util.find_spec(f"omo.{name}.demo") is not None:
                await importlib.import_module(f"omo.{name}.demo").seed_demo(app)
    return PEOPLE
