"""The demo world's official account: a verified café that the demo people follow, and the
platform's template library (as WeChat's: short id, title, fields, industry)."""

from __future__ import annotations

from fastapi import FastAPI

from omo.accounts.service import AccountService, Automation
from omo.demo import DEMO_PASSWORD, PEOPLE

DEMO_BRAND = "Caffè Aurora"

# (short id, title, content, example, industry, category)
LIBRARY: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "OPENTM200000001",
        "Order ready",
        "{{first.DATA}}\nOrder: {{order.DATA}}\nPick up at: {{place.DATA}}\n{{remark.DATA}}",
        "Your order is ready!\nOrder: 1042\nPick up at: the counter\nEnjoy.",
        "Food & beverage",
        "Cafés and restaurants",
    ),
    (
        "OPENTM200000002",
        "Table ready",
        "{{first.DATA}}\nTable: {{table.DATA}}\nParty: {{party.DATA}}",
        "Your table is ready.\nTable: 12\nParty: 4",
        "Food & beverage",
        "Cafés and restaurants",
    ),
    (
        "OPENTM300000001",
        "Order shipped",
        "{{first.DATA}}\nOrder: {{order.DATA}}\nCarrier: {{carrier.DATA}}\n"
        "Tracking: {{tracking.DATA}}",
        "Your parcel left.\nOrder: 88\nCarrier: Poste\nTracking: RR123456789IT",
        "Retail",
        "Online shops",
    ),
    (
        "OPENTM300000002",
        "Back in stock",
        "{{first.DATA}}\nProduct: {{product.DATA}}\n{{remark.DATA}}",
        "Good news!\nProduct: Moka 6 cups\nWhile stocks last.",
        "Retail",
        "Shops",
    ),
    (
        "OPENTM400000001",
        "Appointment reminder",
        "{{first.DATA}}\nWhen: {{time.DATA}}\nWhere: {{place.DATA}}",
        "See you tomorrow.\nWhen: 10:30\nWhere: Via Brera 5",
        "Services",
        "Appointments",
    ),
    (
        "OPENTM500000001",
        "Payment received",
        "{{first.DATA}}\nAmount: {{amount.DATA}}\nReference: {{reference.DATA}}",
        "Thank you.\nAmount: €4.50\nReference: 2026-1042",
        "Finance",
        "Receipts",
    ),
)


async def seed_demo(app: FastAPI) -> None:
    """Idempotent: does nothing when the demo brand already exists."""
    service: AccountService = app.state.accounts
    identity = app.state.identity
    if not await service.library():
        for short_id, title, content, example, industry, category in LIBRARY:
            await service.add_to_library(
                short_id=short_id,
                title=title,
                content=content,
                example=example,
                primary_industry=industry,
                deputy_industry=category,
            )
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
    # The café tells its followers when their order is ready, if they allow it: it asks once
    # in the conversation (the prompt card), each follower decides.
    ready = await service.add_from_library(account_id, "OPENTM200000001")
    _total, openids = await service.followers(account_id)
    for openid in openids:
        await service.brand_send(
            account_id, openid, {"card": {"type": "subscribe", "template_id": ready.id}}
        )
