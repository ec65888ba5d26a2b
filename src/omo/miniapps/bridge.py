"""Mini program use cases beyond launch and login: `chooseCoupon` (the person's coupons for
the mini program's merchant), `requestSubscribeMessage` and the developer's subscribed
messages, coupons issued by the developer, the recently used list, search by name and the
operator's verification.

Kept beside `service.MiniAppService` (whose checks it reuses) so each file stays one screen of
names. Other contexts are reached through their services only: coupons (wallet, claims, the
offer engine), accounts (the organisation's notification templates and the thread a
subscribed message lands in), identity (openids) and pay (the organisation's merchant).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select, update

from omo.core.errors import ProblemError, register
from omo.core.money import Money
from omo.coupons.service import CouponService
from omo.miniapps.models import MiniApp, Recent, Subscription, Version
from omo.miniapps.service import MiniAppService

register("miniapps-no-coupons", 404, "You hold no coupon usable here")
register("miniapps-campaign-not-yours", 403, "The campaign is not one of the organisation's")
register("miniapps-unknown-openid", 404, "No person has this openid in this mini program")
register("miniapps-unknown-template", 404, "No such notification template")
register("miniapps-not-subscribed", 403, "The person allowed no more messages of this template")
register("miniapps-bad-count", 422, "The number of messages is not valid")

SUBSCRIPTION_MAX = 50  # messages one person may have allowed per template, at most
RECENTS_MAX = 20
SEARCH_MAX = 20


@dataclass(frozen=True)
class UsableCoupon:
    coupon_id: uuid.UUID
    campaign_id: uuid.UUID
    title: str
    discount: Money | None
    gift: str
    ends_at: datetime


@dataclass(frozen=True)
class TemplateChoice:
    template_id: str
    title: str
    remaining: int


@dataclass(frozen=True)
class SubscriptionView:
    appid: str
    name: str
    template_id: str
    title: str
    remaining: int


@dataclass(frozen=True)
class IssuedCoupon:
    coupon_id: uuid.UUID
    campaign_id: uuid.UUID
    title: str


@dataclass(frozen=True)
class AppCard:
    appid: str
    name: str
    verified: bool
    page: str
    opened_at: datetime | None


class BridgeService:
    def __init__(self, miniapps: MiniAppService, coupons: CouponService | None) -> None:
        self.miniapps = miniapps
        self.coupons = coupons
        self.db = miniapps.db
        self.clock = miniapps.clock

    def _coupons(self) -> CouponService:
        if self.coupons is None:
            raise ProblemError("miniapps-no-coupons", "Coupons are not available.")
        return self.coupons

    async def _declared(self, appid: str, user_id: uuid.UUID, permission: str, trial: bool) -> None:
        """The running version's manifest asks for the permission (checked server-side too,
        not only by the host)."""
        launch = await self.miniapps.launch(appid, None, user_id, trial=trial)
        if permission not in [p["name"] for p in launch.permissions]:
            raise ProblemError(
                "miniapps-permission-not-declared", "Its manifest does not ask for it."
            )

    # -- chooseCoupon ----------------------------------------------------------------------

    async def usable_coupons(
        self, appid: str, user_id: uuid.UUID, prepay_id: uuid.UUID | None, *, trial: bool = False
    ) -> list[UsableCoupon]:
        """The person's coupons usable at the mini program organisation's merchant (with
        what each takes off when an order of this mini program is named), best first. Needs
        the `coupons` permission, declared and granted."""
        await self._declared(appid, user_id, "coupons", trial)
        app = await self.miniapps.require(appid, user_id, "coupons")
        merchant_id, _owner = await self.miniapps._merchant(app)
        merchant = str(merchant_id)
        coupons = self._coupons()
        now = self.clock.now()
        wallet = {
            c.id: c
            for c in await coupons.wallet(user_id)
            if c.status == "available"
            and merchant in (c.campaign.merchants or [c.campaign.issuer])
            and not c.campaign.stores
            and c.campaign.starts_at <= now < c.campaign.ends_at
        }
        if prepay_id is not None:
            order = await self.miniapps.order_for_payer(appid, user_id, prepay_id)
            basket = await coupons.evaluate(user_id, merchant, None, order.amount)
            found = [
                UsableCoupon(
                    offer.coupon_id,
                    offer.campaign_id,
                    offer.title,
                    offer.discount,
                    offer.gift,
                    wallet[offer.coupon_id].campaign.ends_at,
                )
                for offer in basket.offers
                if offer.coupon_id is not None and offer.coupon_id in wallet
            ]
            return found
        return [
            UsableCoupon(
                c.id, c.campaign.id, c.campaign.title, None, c.campaign.gift, c.campaign.ends_at
            )
            for c in sorted(wallet.values(), key=lambda c: c.campaign.ends_at)
        ]

    # -- requestSubscribeMessage -----------------------------------------------------------

    async def _template_title(self, app: MiniApp, template_id: str) -> str:
        template = await self.miniapps.accounts.organisation_template(
            app.organisation_id, template_id
        )
        if template is None:
            raise ProblemError(
                "miniapps-unknown-template",
                "Use a notification template of the organisation's official account.",
            )
        return str(template.title)

    async def templates(
        self, appid: str, user_id: uuid.UUID, template_ids: list[str], *, trial: bool = False
    ) -> list[TemplateChoice]:
        """What the host's prompt shows: each template's title and what is already allowed."""
        await self._declared(appid, user_id, "subscribe_message", trial)
        app = await self.miniapps.require(appid, user_id, None)
        choices = []
        async with self.db.sessions() as session:
            for template_id in dict.fromkeys(template_ids):
                title = await self._template_title(app, template_id)
                row = await session.get(Subscription, (app.id, user_id, template_id))
                choices.append(TemplateChoice(template_id, title, row.remaining if row else 0))
        return choices

    async def subscribe(
        self, appid: str, user_id: uuid.UUID, counts: dict[str, int], *, trial: bool = False
    ) -> list[TemplateChoice]:
        """The person's answer to the prompt: N more messages of each template (0 refuses;
        the allowance adds up, at most SUBSCRIPTION_MAX)."""
        if any(not 0 <= n <= SUBSCRIPTION_MAX for n in counts.values()):
            raise ProblemError(
                "miniapps-bad-count",
                "Allow between 0 and %(max)d messages.",
                params={"max": SUBSCRIPTION_MAX},
            )
        await self._declared(appid, user_id, "subscribe_message", trial)
        app = await self.miniapps.require(appid, user_id, None)
        for template_id in counts:
            await self._template_title(app, template_id)
        now = self.clock.now()
        async with self.db.transaction() as session:
            for template_id, count in counts.items():
                if count == 0:
                    continue
                row = await session.get(
                    Subscription, (app.id, user_id, template_id), with_for_update=True
                )
                if row is None:
                    session.add(
                        Subscription(
                            app_id=app.id,
                            user_id=user_id,
                            template_id=template_id,
                            remaining=count,
                            updated_at=now,
                        )
                    )
                else:
                    row.remaining = min(row.remaining + count, SUBSCRIPTION_MAX)
                    row.updated_at = now
        return await self.templates(appid, user_id, list(counts), trial=trial)

    async def subscriptions_of(self, user_id: uuid.UUID) -> list[SubscriptionView]:
        """Every allowance the person has left (the settings page)."""
        async with self.db.sessions() as session:
            rows = (
                await session.execute(
                    select(Subscription, MiniApp)
                    .join(MiniApp, MiniApp.id == Subscription.app_id)
                    .where(Subscription.user_id == user_id, Subscription.remaining > 0)
                    .order_by(MiniApp.name, Subscription.template_id)
                )
            ).all()
        views = []
        for row, app in rows:
            template = await self.miniapps.accounts.organisation_template(
                app.organisation_id, row.template_id
            )
            title = str(template.title) if template is not None else row.template_id
            views.append(
                SubscriptionView(app.appid, app.name, row.template_id, title, row.remaining)
            )
        return views

    async def unsubscribe(self, appid: str, user_id: uuid.UUID, template_id: str) -> None:
        """Withdraw every message of the template still allowed."""
        async with self.db.transaction() as session:
            app = await self.miniapps._app_by_appid(session, appid)
            row = await session.get(Subscription, (app.id, user_id, template_id))
            if row is not None:
                await session.delete(row)

    async def send_subscribed(
        self,
        app_id: uuid.UUID,
        openid: str,
        template_id: str,
        data: dict[str, Any],
        page: str,
        base_url: str,
    ) -> int:
        """The mini program's server sends one subscribed message: it spends one of the
        messages the person allowed (one conditional UPDATE, so racing sends never spend more
        than were given) and lands as a card in the person's thread with the organisation's
        official account that owns the template; the card opens the mini program's page.
        Returns what is left."""
        async with self.db.sessions() as session:
            app = await session.get(MiniApp, app_id)
        assert app is not None
        user_id = await self.miniapps.identity.resolve_openid(f"miniapp:{app.appid}", openid)
        if user_id is None:
            raise ProblemError("miniapps-unknown-openid", "Use an openid from code2session.")
        title = await self._template_title(app, template_id)
        url = ""
        if page:
            launch = await self.miniapps.launch(app.appid, page, None)
            base = self.miniapps.public_url or base_url.rstrip("/")
            url = f"{base}/mp/{app.appid}/{quote(launch.page, safe='/')}"
        async with self.db.transaction() as session:
            spent = await session.execute(
                update(Subscription)
                .where(
                    Subscription.app_id == app.id,
                    Subscription.user_id == user_id,
                    Subscription.template_id == template_id,
                    Subscription.remaining > 0,
                )
                .values(remaining=Subscription.remaining - 1, updated_at=self.clock.now())
            )
            if spent.rowcount != 1:  # type: ignore[attr-defined]
                raise ProblemError(
                    "miniapps-not-subscribed",
                    "Ask with requestSubscribeMessage: each allowed message is sent once.",
                )
            left = await session.scalar(
                select(Subscription.remaining).where(
                    Subscription.app_id == app.id,
                    Subscription.user_id == user_id,
                    Subscription.template_id == template_id,
                )
            )
        try:
            await self.miniapps.accounts.deliver_notice(
                template_id, user_id, data, url=url, title=title
            )
        except Exception:
            # Not delivered (the template went away meanwhile): the allowance is given back.
            async with self.db.transaction() as session:
                await session.execute(
                    update(Subscription)
                    .where(
                        Subscription.app_id == app.id,
                        Subscription.user_id == user_id,
                        Subscription.template_id == template_id,
                    )
                    .values(remaining=Subscription.remaining + 1)
                )
            raise
        return int(left or 0)

    # -- coupons issued by the developer ---------------------------------------------------

    async def issue_coupon(
        self, app_id: uuid.UUID, openid: str, campaign_id: uuid.UUID
    ) -> IssuedCoupon:
        """One coupon of the organisation's own campaign to the person (by openid), within
        the campaign's stock and per-person limit."""
        async with self.db.sessions() as session:
            app = await session.get(MiniApp, app_id)
        assert app is not None
        coupons = self._coupons()
        merchant_id, _owner = await self.miniapps._merchant(app)
        try:
            campaign = await coupons.campaign(campaign_id)
        except ProblemError:
            raise ProblemError(
                "miniapps-campaign-not-yours", "Issue coupons of the organisation's campaigns."
            ) from None
        if campaign.issuer != str(merchant_id):
            raise ProblemError(
                "miniapps-campaign-not-yours", "Issue coupons of the organisation's campaigns."
            )
        user_id = await self.miniapps.identity.resolve_openid(f"miniapp:{app.appid}", openid)
        if user_id is None:
            raise ProblemError("miniapps-unknown-openid", "Use an openid from code2session.")
        coupon = await coupons.claim(user_id, campaign_id=campaign_id, source="miniapp")
        return IssuedCoupon(coupon.id, campaign.id, campaign.title)

    # -- recently used, search, verification ------------------------------------------------

    async def opened(self, appid: str, user_id: uuid.UUID) -> None:
        """The host page opened the mini program for the person (the recently used list)."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            app = await self.miniapps._app_by_appid(session, appid)
            row = await session.get(Recent, (user_id, app.id), with_for_update=True)
            if row is None:
                session.add(Recent(user_id=user_id, app_id=app.id, opened_at=now))
            else:
                row.opened_at = now

    async def recent(self, user_id: uuid.UUID) -> list[AppCard]:
        async with self.db.sessions() as session:
            rows = (
                await session.execute(
                    select(MiniApp, Recent.opened_at, Version.manifest)
                    .join(Recent, Recent.app_id == MiniApp.id)
                    .join(Version, Version.app_id == MiniApp.id)
                    .where(Recent.user_id == user_id, Version.state == "released")
                    .order_by(Recent.opened_at.desc())
                    .limit(RECENTS_MAX)
                )
            ).all()
        return [_card(app, manifest, opened) for app, opened, manifest in rows]

    async def search(self, query: str) -> list[AppCard]:
        """Released mini programs whose name contains the words (case-insensitive)."""
        words = [w for w in query.lower().split() if w][:5]
        if not words:
            return []
        conditions = [func.lower(MiniApp.name).contains(word, autoescape=True) for word in words]
        async with self.db.sessions() as session:
            rows = (
                await session.execute(
                    select(MiniApp, Version.manifest)
                    .join(Version, Version.app_id == MiniApp.id)
                    .where(Version.state == "released", *conditions)
                    .order_by(MiniApp.verified_at.is_(None), MiniApp.name)
                    .limit(SEARCH_MAX)
                )
            ).all()
        return [_card(app, manifest, None) for app, manifest in rows]

    async def verify(self, operator: uuid.UUID, app_id: uuid.UUID, verified: bool) -> AppCard:
        """The platform operator vouches for the mini program: a badge in the host's bar."""
        await self.miniapps.accounts.require_operator(operator)
        async with self.db.transaction() as session:
            app = await session.get(MiniApp, app_id)
            if app is None:
                raise ProblemError("not-found", "No such mini program.")
            app.verified_at = self.clock.now() if verified else None
            manifest = await session.scalar(
                select(Version.manifest).where(
                    Version.app_id == app_id, Version.state == "released"
                )
            )
        return _card(app, manifest or {}, None)


def _card(app: MiniApp, manifest: dict[str, Any], opened_at: datetime | None) -> AppCard:
    pages = manifest.get("pages") or [""]
    return AppCard(app.appid, app.name, app.verified_at is not None, str(pages[0]), opened_at)
