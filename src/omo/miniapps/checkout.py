"""The developer API's basket: a mini program's server asks what the coupons engine offers one
of its users for a basket at its organisation's shop — the best coupon they hold, and the
nearest threshold ("spend 4.50 € more to save 3 €"). The person is named by the mini
program's own openid; nothing else about them is revealed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from omo.core.errors import ProblemError
from omo.core.money import Money
from omo.coupons.service import CouponService
from omo.identity.service import IdentityService
from omo.miniapps.models import MiniApp
from omo.miniapps.service import MiniAppService
from omo.pay.service import PayService


@dataclass(frozen=True)
class BestOffer:
    title: str
    discount: Money


@dataclass(frozen=True)
class NextOffer:
    title: str
    spend_more: Money
    discount: Money


@dataclass(frozen=True)
class BasketView:
    best: BestOffer | None
    nearest: NextOffer | None


class CheckoutService:
    def __init__(
        self,
        miniapps: MiniAppService,
        identity: IdentityService,
        coupons: CouponService,
        pay: PayService,
    ) -> None:
        self.miniapps, self.identity, self.coupons, self.pay = miniapps, identity, coupons, pay

    async def basket(self, app_id: uuid.UUID, openid: str, amount: Money) -> BasketView:
        async with self.miniapps.db.sessions() as session:
            app = await session.get(MiniApp, app_id)
        if app is None:
            raise ProblemError("not-found", "No such mini program.")
        appid, organisation = app.appid, app.organisation_id
        user_id = await self.identity.resolve_openid(f"miniapp:{appid}", openid)
        if user_id is None:
            raise ProblemError("not-found", "No such user of this mini program.")
        merchant = await self.pay.organisation_merchant(str(organisation))
        if merchant is None:
            raise ProblemError("miniapps-no-merchant", "Open a merchant account for it first.")
        basket = await self.coupons.evaluate(user_id, str(merchant[0]), None, amount)
        best = BestOffer(basket.best.title, basket.best.discount) if basket.best else None
        nearest = (
            NextOffer(basket.nearest.title, basket.nearest.spend_more, basket.nearest.discount)
            if basket.nearest
            else None
        )
        return BasketView(best, nearest)
