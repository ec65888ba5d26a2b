"""The demo world's Moments: the demo people share a meal and a link, like and comment, and
the café's account sponsors a post to its followers."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from omo.accounts.demo import DEMO_BRAND
from omo.demo import DEMO_PASSWORD, PEOPLE
from omo.social.service import Draft, SocialService
from omo.social.sponsored import SponsoredService, Targeting


async def seed_demo(app: FastAPI) -> None:
    """Idempotent: does nothing when Giulia has posted already."""
    social: SocialService = app.state.social
    sponsored: SponsoredService = app.state.sponsored
    identity = app.state.identity
    people = [
        await identity.ensure_person(p.phone, DEMO_PASSWORD, p.name, p.omo_id) for p in PEOPLE
    ]
    li, giulia, camille, yuki = people
    if (await social.profile_posts(giulia, PEOPLE[1].omo_id)).posts:
        return
    await social.publish(
        li,
        Draft(
            text="Reading about Milan before Saturday.",
            card={
                "kind": "link",
                "url": "https://en.wikipedia.org/wiki/Brera",
                "title": "Brera, Milan",
            },
        ),
    )
    meal = await social.publish(
        giulia,
        Draft(
            text="Risotto alla milanese with friends. Who is coming next time?",
            place={"name": "Caffè Aurora · Brera", "latitude": 45.4719, "longitude": 9.1881},
            mentions=(PEOPLE[0].omo_id,),
        ),
    )
    await social.like(li, meal.id)
    await social.like(camille, meal.id)
    first = await social.comment(li, meal.id, "Me! Saturday?")
    await social.comment(giulia, meal.id, "Saturday it is.", reply_to=first.id)
    await social.comment(yuki, meal.id, "Looks wonderful")
    owned = await app.state.accounts.organisations_of(giulia)
    brands = [org_id for org_id, name, _role in owned if name == DEMO_BRAND]
    if brands:
        account = (await app.state.accounts.accounts_of_organisation(giulia, brands[0]))[0]
        await sponsored.create(
            giulia,
            account.id,
            text="Pistachio cornetti are back: show this post for a free espresso.",
            card=None,
            targeting=Targeting(followers_only=True),
            daily_cap=3,
            starts_at=None,
            ends_at=app.state.clock.now() + timedelta(days=60),
        )
