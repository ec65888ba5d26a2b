"""The pay context's HTTP dependencies: who may act for a merchant, decided from the path
before the body is read. Other contexts' routes about a merchant (coupons) use them too."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from omo.core.auth import CurrentPrincipal
from omo.core.errors import ProblemError
from omo.pay.service import PayService


async def pay_service(request: Request) -> PayService:
    service: PayService = request.app.state.pay
    return service


Pay = Annotated[PayService, Depends(pay_service)]


async def merchant_member(
    merchant_id: uuid.UUID, principal: CurrentPrincipal, service: Pay
) -> uuid.UUID:
    """Who may act for the merchant in the path, decided before the body is even read."""
    await service.role(principal.user_id, merchant_id)
    return merchant_id


async def merchant_owner(
    merchant_id: uuid.UUID, principal: CurrentPrincipal, service: Pay
) -> uuid.UUID:
    if await service.role(principal.user_id, merchant_id) != "owner":
        raise ProblemError("merchant-forbidden", "Only the owner can do this.")
    return merchant_id


Member = Annotated[uuid.UUID, Depends(merchant_member)]
Owner = Annotated[uuid.UUID, Depends(merchant_owner)]
