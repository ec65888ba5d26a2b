"""The demo world's official account: a verified café that the demo people follow."""

from __future__ import annotations

from fastapi import FastAPI

from omo.accounts.service import AccountService, Automation
from omo.demo import DEMO_PASSWORD, PEOPLE

DEMO_BRAND = "Caffè Aurora"


async def seed_demo(app: FastAPI) -> None:
    """Idempotent: does nothing when the demo brand already exists."""
    service: AccountService = app.state.accounts
    identity = app.state.identity
    people = [
        await identity.ensure_person(p.phone, DEMO_PASSWORD, p.name, p.omo_id) for p in PEOPLE
    ]
    owner = people[1]
    if any(name == DEMO_BRAND for _id, name, _role in await service.organisations_of(owner)):
        return
    org = await service.create_organisation(owner, DEMO_BRAND)
    created = await service.create_account(
        owner,
        org.id,
        kind="subscription",
        name=DEMO_BRAND,
        description="Espresso, cornetti and the news of the day, in Brera since 1921.",
    )
    account_id = created.account.id
    await service.verify(account_id)
    await service.set_automation(
        account_id,
        Automation(
            welcome="Welcome to Caffè Aurora! Write 'hours' to know when we are open.",
            default_reply="Thanks! A barista will answer soon.",
            rules=[("contains", "hours", "Every day 7:00-20:00.")],
        ),
    )
    await service.set_menu(
        account_id,
        [
            {"type": "click", "name": "Today's special", "key": "SPECIAL"},
            {"type": "view", "name": "Website", "url": "https://example.org/aurora"},
        ],
    )
    for user_id in people[:-1] if len(people) > 1 else people:
        await service.follow(user_id, account_id, scene="demo")
    await service.broadcast(account_id, {"text": "Pistachio cornetti are back this week!"})
