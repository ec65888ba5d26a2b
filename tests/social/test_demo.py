"""The demo world shows something on Moments and Nearby, and seeding twice changes nothing."""

from __future__ import annotations

from fastapi import FastAPI

from omo.accounts.demo import seed_demo as seed_accounts
from omo.demo import DEMO_PASSWORD, PEOPLE
from omo.messaging.demo import seed_demo as seed_messaging
from omo.pay.demo import seed_demo as seed_pay
from omo.social.demo import seed_demo as seed_social
from omo.social.nearby.demo import BOOKSHOP, VISIBLE
from omo.social.nearby.demo import seed_demo as seed_nearby


async def test_the_demo_world_has_moments_a_sponsored_post_places_and_people_nearby(
    app: FastAPI,
) -> None:
    for _ in range(2):
        for seed in (seed_messaging, seed_pay, seed_accounts, seed_social, seed_nearby):
            await seed(app)
    identity = app.state.identity
    li, giulia, camille, _yuki = [
        await identity.ensure_person(p.phone, DEMO_PASSWORD, p.name, p.omo_id) for p in PEOPLE
    ]
    page = await app.state.social.timeline(li)
    assert [p.author.display_name for p in page.posts] == ["Giulia Rossi", "Li Wei"]
    meal = page.posts[0]
    assert meal.place is not None
    assert len(meal.comments) == 3
    assert {p.display_name for p in meal.likes} == {"Li Wei", "Camille Martin"}
    ad = await app.state.sponsored.pick(li)
    assert ad is not None
    assert ad.account_name == "Caffè Aurora"
    places = await app.state.nearby.places(camille, *VISIBLE[2])
    by_name = {p.account_name or p.merchant_name: p for p in places}
    assert by_name[BOOKSHOP].kind == "account"
    assert [o.title for o in by_name[BOOKSHOP].offers] == ["3 off any paperback"]
    assert "Caffè Aurora" in by_name
    assert (await app.state.nearby.visibility(camille)).visible
    _until, found = await app.state.nearby.people(camille, *VISIBLE[2])
    assert [p.profile.display_name for p in found] == ["Sato Yuki"]
    assert giulia not in [p.profile.user_id for p in found]
