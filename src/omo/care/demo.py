"""The demo world's care desk: the café's owner serves its account, and a follower has
written, so the console at /console has a conversation to show."""

from __future__ import annotations

from fastapi import FastAPI

from omo.accounts.demo import DEMO_BRAND
from omo.accounts.service import AccountService
from omo.care.service import CareService
from omo.demo import DEMO_PASSWORD, PEOPLE


async def seed_demo(app: FastAPI) -> None:
    """Idempotent: does nothing when the brand already has a care team."""
    accounts: AccountService = app.state.accounts
    care: CareService = app.state.care
    identity = app.state.identity
    people = [
        await identity.ensure_person(p.phone, DEMO_PASSWORD, p.name, p.omo_id) for p in PEOPLE
    ]
    owner = people[1]
    brands = [i for i, name, _role in await accounts.organisations_of(owner) if name == DEMO_BRAND]
    if not brands or await care.teams(owner, brands[0]):
        return
    account = (await accounts.accounts_of_organisation(owner, brands[0]))[0]
    team = await care.create_team(owner, brands[0], "Baristas", "least_loaded", [account.id])
    me = (await identity.public_profiles([owner]))[owner]
    await care.set_agent(owner, team.id, me.omo_id, 10)
    await accounts.user_send(people[0], account.id, {"text": "Do you have oat milk?"})
    await care.run_once()
