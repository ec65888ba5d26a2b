"""Demo chats: the demo people are friends, two of them chat, and all four share a group."""

from __future__ import annotations

from fastapi import FastAPI

from omo.demo import DEMO_PASSWORD, PEOPLE
from omo.messaging.service import Draft, MessagingService

DEMO_GROUP = "Weekend in Milan"
DIRECT = (
    (1, "Ciao Li! Are you still coming to Milan on Saturday?"),
    (0, "Yes! Landing at 10. Coffee at Caffè Aurora?"),
    (1, "Perfect, I will pay with OMO, they have a coupon this week."),
)
GROUP = (
    (1, "Welcome! Plans for Saturday below."),
    (2, "I can join from 11."),
    (3, "Me too. Let's meet at the Duomo."),
)


async def seed_demo(app: FastAPI) -> None:
    """Idempotent: fixed client ids make every message a retry on the second run."""
    messaging: MessagingService = app.state.messaging
    identity = app.state.identity
    ids = [await identity.ensure_person(p.phone, DEMO_PASSWORD, p.name, p.omo_id) for p in PEOPLE]
    for a, person_a in enumerate(PEOPLE):
        for b in range(a + 1, len(PEOPLE)):
            await messaging.request_friend(ids[a], PEOPLE[b].omo_id)
            await messaging.accept_friend(ids[b], person_a.omo_id)
    direct = await messaging.open_direct(ids[1], PEOPLE[0].omo_id)
    for n, (who, text) in enumerate(DIRECT):
        await messaging.send(
            ids[who], Draft(conversation_id=direct, client_id=f"demo-{n}", text=text)
        )
    existing = [c for c in await messaging.conversations(ids[1]) if c.name == DEMO_GROUP]
    group = (
        existing[0].id
        if existing
        else await messaging.create_group(
            ids[1], DEMO_GROUP, [p.omo_id for p in PEOPLE if p is not PEOPLE[1]]
        )
    )
    await messaging.update_group(ids[1], group, announcement="Saturday 11:00, Piazza del Duomo.")
    for n, (who, text) in enumerate(GROUP):
        await messaging.send(
            ids[who], Draft(conversation_id=group, client_id=f"demo-{n}", text=text)
        )
