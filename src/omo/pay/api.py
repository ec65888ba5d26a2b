"""Pay routes under /api/v1/pay. Thin: parse, call the service, serialise."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import segno
from fastapi import APIRouter, Depends, FastAPI, Request

from omo.core.access import Access, access
from omo.core.auth import CurrentPrincipal
from omo.core.background import run_every, stop_task
from omo.core.errors import PROBLEM_MEDIA_TYPE, Problem, ProblemError
from omo.core.money import Money
from omo.core.ratelimit import Limit, RateLimiter
from omo.coupons import service as coupons
from omo.pay import pages
from omo.pay.deps import Member, Owner, Pay
from omo.pay.schemas import (
    BankOut,
    BankRequest,
    CashierRequest,
    ChargeRequest,
    CodeOut,
    ConfirmRequest,
    ConversionRequest,
    MerchantApplicationOut,
    MerchantFeeRequest,
    MerchantOut,
    MerchantRequest,
    MerchantReviewRequest,
    MerchantUpdate,
    MoneyOut,
    OrderQrOut,
    OrderQrRequest,
    PaidOut,
    PaymentOut,
    PinRequest,
    QrOut,
    QrPayRequest,
    RefundOut,
    RefundRequest,
    ReservationPayRequest,
    StoreOut,
    StoreRequest,
    WalletOut,
)
from omo.pay.service import (
    BankResult,
    MerchantApplication,
    MerchantView,
    PayConfig,
    PaymentResult,
    PaymentView,
    PayService,
    StoreView,
    parse_basket,
    parse_money,
)

api = APIRouter(prefix="/api/v1/pay", tags=["pay"])

PERSON = access(Access.PERSON)

OPERATOR = access(Access.OPERATOR)
OPERATE_MERCHANT = access(Access.OPERATOR, resource="pay.merchant")
MEMBER = access(Access.BRAND_MEMBER, resource="pay.merchant", roles=("owner", "cashier"))
OWNER_ONLY = access(Access.BRAND_MEMBER, resource="pay.merchant", roles=("owner",))


async def payment_payer(
    payment_id: uuid.UUID, principal: CurrentPrincipal, service: Pay
) -> uuid.UUID:
    """Only the customer who made the payment may see or confirm it; others get a 404."""
    await service.customer_payment(principal.user_id, payment_id)
    return payment_id


async def reservation_holder(
    reservation_id: uuid.UUID, principal: CurrentPrincipal, service: Pay
) -> uuid.UUID:
    """Only the person who reserved the flash-sale unit may pay for it; others get a 404."""
    await coupons.reservation_offer(service.db, reservation_id, principal.user_id)
    return reservation_id


async def platform_operator(
    request: Request, principal: CurrentPrincipal, service: Pay
) -> uuid.UUID:
    """A platform operator (settings OMO_OPERATORS, by OMO ID); anyone else gets a 403."""
    operators: frozenset[str] = request.app.state.pay_operators
    if operators:
        profiles = await request.app.state.identity.public_profiles([principal.user_id])
        profile = profiles.get(principal.user_id)
        if profile is not None and profile.omo_id.lower() in operators:
            return principal.user_id
    raise ProblemError("pay-not-operator", "Ask the platform's operator.")


Operator = Annotated[uuid.UUID, Depends(platform_operator)]
Payer = Annotated[uuid.UUID, Depends(payment_payer)]
Holder = Annotated[uuid.UUID, Depends(reservation_holder)]

# A wrong PIN, again and again, locks it: routes that check the PIN may answer 423.
PIN_CHECKED: dict[int | str, dict[str, Any]] = {
    423: {
        "description": "Payment PIN locked after too many wrong tries; try again later",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": Problem.model_json_schema()}},
    }
}


async def start(app: FastAPI) -> None:
    settings = app.state.settings
    operators = frozenset(o.strip().lower() for o in settings.operators.split(",") if o.strip())
    app.state.pay_operators = operators
    config = PayConfig(
        webhooks_to_private_networks=settings.webhooks_to_private_networks,
        merchant_approval=bool(operators),
    )
    session_active = app.state.identity.session_active
    service = PayService(
        app.state.db,
        app.state.clock,
        config=config,
        session_active=session_active,
        sessions=app.state.identity,
    )
    app.state.pay = service
    app.state.identity.erasure_guards.append(service.refuse_erasure_while_holding_money)

    app.state.pay_worker = run_every(2, service.run_background_once, "pay-background")


async def stop(app: FastAPI) -> None:
    await stop_task(app.state.pay_worker)
    await app.state.pay.close()


def _money_list(balances: list[Money]) -> list[MoneyOut]:
    return [MoneyOut.of(money) for money in balances]


def payment_out(view: PaymentView) -> PaymentOut:
    return PaymentOut(
        id=view.id,
        merchant_id=view.merchant_id,
        merchant_name=view.merchant_name,
        store_id=view.store_id,
        order_id=view.order_id,
        status=view.status,
        amount=MoneyOut.of(view.amount),
        discount=MoneyOut.of(view.discount),
        paid=MoneyOut.of(view.paid),
        refunded=MoneyOut.of(view.refunded),
        coupon_id=view.coupon_id,
        created_at=view.created_at,
        expires_at=view.expires_at,
        paid_at=view.paid_at,
    )


def _paid(result: PaymentResult) -> PaidOut:
    balance = MoneyOut.of(result.balance) if result.balance else None
    return PaidOut(payment=payment_out(result.payment), balance=balance)


def _bank(result: BankResult) -> BankOut:
    return BankOut(
        id=result.id,
        status=result.status,
        amount=MoneyOut.of(result.amount),
        balances=_money_list(result.balances),
    )


def _merchant(view: MerchantView) -> MerchantOut:
    return MerchantOut(
        id=view.id,
        organisation_id=view.organisation_id,
        name=view.name,
        fee_bps=view.fee_bps,
        role=view.role,
        webhook_url=view.webhook_url,
        webhook_secret=view.webhook_secret if view.role == "owner" else None,
        status=view.status,  # type: ignore[arg-type]
        review_reason=view.review_reason,
    )


async def _applications(
    request: Request, applications: list[MerchantApplication]
) -> list[MerchantApplicationOut]:
    owners = [a.owner_user_id for a in applications]
    profiles = await request.app.state.identity.public_profiles(owners) if owners else {}
    return [
        MerchantApplicationOut(
            id=a.id,
            organisation_id=a.organisation_id,
            name=a.name,
            owner_omo_id=profiles[a.owner_user_id].omo_id if a.owner_user_id in profiles else None,
            status=a.status,  # type: ignore[arg-type]
            fee_bps=a.fee_bps,
            created_at=a.created_at,
            reviewed_at=a.reviewed_at,
            review_reason=a.review_reason,
        )
        for a in applications
    ]


def _base(request: Request) -> str:
    base = request.app.state.settings.public_url or str(request.base_url)
    return str(base).rstrip("/")


def _store(request: Request, view: StoreView) -> StoreOut:
    return StoreOut(
        id=view.id,
        merchant_id=view.merchant_id,
        name=view.name,
        latitude=view.latitude,
        longitude=view.longitude,
        qr_url=f"{_base(request)}/pay/qr/{view.qr_token}",
    )


def qr_svg(data: str) -> str:
    # A regular QR code, never a Micro QR (segno's choice for short data, which phone
    # cameras and browser barcode detectors do not read).
    qr = segno.make(data, error="m", micro=False)
    svg: str = qr.svg_inline(scale=4, dark="#111", light="#fff")
    return svg


def code_qr_svg(code: str) -> str:
    """The payment code's QR: 18 digits fit version 1 (21×21); a fixed mask pattern (valid
    for every reader) spares the search for the best of eight, a millisecond of CPU per code."""
    qr = segno.make(code, error="m", micro=False, version=1, mask=0)
    svg: str = qr.svg_inline(scale=4, dark="#111", light="#fff")
    return svg


# -- the customer's wallet ---------------------------------------------------------------------


@api.get("/wallet", response_model=WalletOut, openapi_extra=PERSON)
async def wallet(principal: CurrentPrincipal, service: Pay) -> WalletOut:
    balances = await service.wallet(principal.user_id)
    return WalletOut(
        balances=_money_list(balances), has_pin=await service.has_pin(principal.user_id)
    )


@api.get("/wallet/balance-at", response_model=MoneyOut, openapi_extra=PERSON)
async def balance_at(
    principal: CurrentPrincipal, service: Pay, currency: str, at: datetime
) -> MoneyOut:
    if at.tzinfo is None:
        raise ProblemError("invalid-amount", "Give the time with its UTC offset.")
    parse_money("0", currency)
    return MoneyOut.of(await service.balance_at(principal.user_id, currency, at))


@api.post("/wallet/top-ups", response_model=BankOut, openapi_extra=PERSON)
async def top_up(body: BankRequest, principal: CurrentPrincipal, service: Pay) -> BankOut:
    money = parse_money(body.amount, body.currency)
    return _bank(await service.top_up(principal.user_id, body.request_id, body.bank_account, money))


@api.post("/wallet/withdrawals", response_model=BankOut, openapi_extra=PERSON)
async def withdraw(body: BankRequest, principal: CurrentPrincipal, service: Pay) -> BankOut:
    money = parse_money(body.amount, body.currency)
    return _bank(
        await service.withdraw(principal.user_id, body.request_id, body.bank_account, money)
    )


@api.post("/wallet/conversions", response_model=WalletOut, openapi_extra=PERSON)
async def convert(body: ConversionRequest, principal: CurrentPrincipal, service: Pay) -> WalletOut:
    parse_money("0", body.to_currency)
    balances = await service.convert(
        principal.user_id, parse_money(body.amount, body.currency), body.to_currency
    )
    return WalletOut(
        balances=_money_list(balances), has_pin=await service.has_pin(principal.user_id)
    )


@api.put("/wallet/pin", response_model=WalletOut, responses=PIN_CHECKED, openapi_extra=PERSON)
async def set_pin(body: PinRequest, principal: CurrentPrincipal, service: Pay) -> WalletOut:
    await service.set_pin(principal.user_id, body.pin, body.current_pin)
    return WalletOut(balances=_money_list(await service.wallet(principal.user_id)), has_pin=True)


@api.post("/codes", response_model=CodeOut, status_code=201, openapi_extra=PERSON)
async def payment_code(request: Request, principal: CurrentPrincipal, service: Pay) -> CodeOut:
    # The app refreshes its code every 60 s; a burst far beyond that is a script, not a person.
    limiter: RateLimiter = request.app.state.limiter
    per_minute = Limit(
        "payment-code-person", request.app.state.settings.payment_codes_per_minute, 60
    )
    await limiter.hit(per_minute, str(principal.user_id))
    issued = await service.issue_code(principal.user_id, principal.session_id)
    return CodeOut(
        code=issued.code,
        expires_at=issued.expires_at,
        refresh_seconds=service.config.code_ttl_seconds,
        qr_svg=code_qr_svg(issued.code),
    )


@api.get("/payments", response_model=list[PaymentOut], openapi_extra=PERSON)
async def history(principal: CurrentPrincipal, service: Pay) -> list[PaymentOut]:
    return [payment_out(view) for view in await service.history(principal.user_id)]


@api.get("/payments/pending", response_model=list[PaymentOut], openapi_extra=PERSON)
async def pending(principal: CurrentPrincipal, service: Pay) -> list[PaymentOut]:
    views = await service.pending_for(principal.user_id, principal.session_id)
    return [payment_out(view) for view in views]


@api.get(
    "/payments/{payment_id}",
    response_model=PaymentOut,
    openapi_extra=access(Access.OWNER, resource="pay.payment"),
)
async def payment(payment_id: Payer, principal: CurrentPrincipal, service: Pay) -> PaymentOut:
    return payment_out(await service.customer_payment(principal.user_id, payment_id))


@api.post(
    "/payments/{payment_id}/confirm",
    response_model=PaidOut,
    responses=PIN_CHECKED,
    openapi_extra=access(Access.OWNER, resource="pay.payment"),
)
async def confirm(
    payment_id: Payer, body: ConfirmRequest, principal: CurrentPrincipal, service: Pay
) -> PaidOut:
    return _paid(
        await service.confirm(principal.user_id, principal.session_id, payment_id, body.pin)
    )


@api.get("/qr/{token}", response_model=QrOut, openapi_extra=PERSON)
async def scan_qr(token: str, principal: CurrentPrincipal, service: Pay) -> QrOut:
    view = await service.scan_qr(token)
    return QrOut(
        merchant_name=view.merchant_name,
        store_name=view.store_name,
        amount=MoneyOut.of(view.amount) if view.amount else None,
        order_id=view.order_id,
        expires_at=view.expires_at,
    )


@api.post("/qr/{token}/pay", response_model=PaidOut, responses=PIN_CHECKED, openapi_extra=PERSON)
async def pay_qr(
    token: str, body: QrPayRequest, principal: CurrentPrincipal, service: Pay
) -> PaidOut:
    money = None
    if body.amount is not None or body.currency is not None:
        money = parse_money(body.amount or "", body.currency or "")
    result = await service.pay_qr(
        principal.user_id,
        principal.session_id,
        token,
        body.request_id,
        body.pin,
        money,
        body.coupon,
    )
    return _paid(result)


@api.post(
    "/flash/reservations/{reservation_id}/pay",
    response_model=PaidOut,
    responses=PIN_CHECKED,
    openapi_extra=access(Access.OWNER, resource="coupons.reservation"),
)
async def pay_reservation(
    reservation_id: Holder,
    body: ReservationPayRequest,
    principal: CurrentPrincipal,
    service: Pay,
) -> PaidOut:
    return _paid(
        await service.pay_reservation(
            principal.user_id, principal.session_id, reservation_id, body.pin
        )
    )


# -- merchants ---------------------------------------------------------------------------------


@api.post("/merchants", response_model=MerchantOut, status_code=201, openapi_extra=PERSON)
async def create_merchant(
    body: MerchantRequest, principal: CurrentPrincipal, service: Pay
) -> MerchantOut:
    view = await service.create_merchant(
        principal.user_id, body.organisation_id, body.name, body.webhook_url
    )
    return _merchant(view)


@api.get("/merchants", response_model=list[MerchantOut], openapi_extra=PERSON)
async def my_merchants(principal: CurrentPrincipal, service: Pay) -> list[MerchantOut]:
    return [_merchant(view) for view in await service.my_merchants(principal.user_id)]


@api.get("/merchants/{merchant_id}", response_model=MerchantOut, openapi_extra=MEMBER)
async def merchant(merchant_id: Member, principal: CurrentPrincipal, service: Pay) -> MerchantOut:
    return _merchant(await service.merchant(principal.user_id, merchant_id))


@api.patch("/merchants/{merchant_id}", response_model=MerchantOut, openapi_extra=OWNER_ONLY)
async def update_merchant(
    merchant_id: Owner, body: MerchantUpdate, principal: CurrentPrincipal, service: Pay
) -> MerchantOut:
    return _merchant(
        await service.update_merchant(principal.user_id, merchant_id, body.webhook_url)
    )


@api.get("/merchants/{merchant_id}/balances", response_model=list[MoneyOut], openapi_extra=MEMBER)
async def merchant_balances(
    merchant_id: Member, principal: CurrentPrincipal, service: Pay
) -> list[MoneyOut]:
    return _money_list(await service.merchant_balances(principal.user_id, merchant_id))


@api.post(
    "/merchants/{merchant_id}/stores",
    response_model=StoreOut,
    status_code=201,
    openapi_extra=OWNER_ONLY,
)
async def add_store(
    merchant_id: Owner,
    body: StoreRequest,
    request: Request,
    principal: CurrentPrincipal,
    service: Pay,
) -> StoreOut:
    view = await service.add_store(
        principal.user_id, merchant_id, body.name, body.latitude, body.longitude
    )
    return _store(request, view)


@api.get("/merchants/{merchant_id}/stores", response_model=list[StoreOut], openapi_extra=MEMBER)
async def stores(
    merchant_id: Member, request: Request, principal: CurrentPrincipal, service: Pay
) -> list[StoreOut]:
    await service.merchant(principal.user_id, merchant_id)
    return [_store(request, view) for view in await service.stores(merchant_id)]


@api.post(
    "/merchants/{merchant_id}/cashiers",
    response_model=MerchantOut,
    status_code=201,
    openapi_extra=OWNER_ONLY,
)
async def add_cashier(
    merchant_id: Owner,
    body: CashierRequest,
    request: Request,
    principal: CurrentPrincipal,
    service: Pay,
) -> MerchantOut:
    await service.merchant(principal.user_id, merchant_id)
    person = await request.app.state.identity.find_by_omo_id(body.omo_id)
    await service.add_cashier(principal.user_id, merchant_id, person.user_id)
    return _merchant(await service.merchant(principal.user_id, merchant_id))


@api.post(
    "/merchants/{merchant_id}/application",
    response_model=MerchantOut,
    openapi_extra=OWNER_ONLY,
)
async def reapply(merchant_id: Owner, principal: CurrentPrincipal, service: Pay) -> MerchantOut:
    """Apply again after a rejection: the merchant waits for an operator once more."""
    return _merchant(await service.reapply(principal.user_id, merchant_id))


# -- the platform operator: merchant applications ------------------------------------------


@api.get(
    "/operator/merchants",
    response_model=list[MerchantApplicationOut],
    openapi_extra=OPERATOR,
)
async def merchant_applications(
    operator: Operator,
    request: Request,
    service: Pay,
    status: Literal["pending", "approved", "rejected"] = "pending",
) -> list[MerchantApplicationOut]:
    return await _applications(request, await service.merchant_applications(status))


@api.post(
    "/operator/merchants/{merchant_id}/review",
    response_model=MerchantApplicationOut,
    openapi_extra=OPERATE_MERCHANT,
)
async def review_merchant(
    merchant_id: uuid.UUID,
    body: MerchantReviewRequest,
    operator: Operator,
    request: Request,
    service: Pay,
) -> MerchantApplicationOut:
    """Approve or reject a pending merchant application (a reason is needed to reject)."""
    client = request.client.host if request.client else None
    reviewed = await service.review_merchant(
        operator, merchant_id, body.decision, body.reason, client
    )
    return (await _applications(request, [reviewed]))[0]


@api.put(
    "/operator/merchants/{merchant_id}/fee",
    response_model=MerchantApplicationOut,
    openapi_extra=OPERATE_MERCHANT,
)
async def merchant_fee(
    merchant_id: uuid.UUID,
    body: MerchantFeeRequest,
    operator: Operator,
    request: Request,
    service: Pay,
) -> MerchantApplicationOut:
    """Set the platform's fee per payment of this merchant (basis points)."""
    client = request.client.host if request.client else None
    changed = await service.set_fee(operator, merchant_id, body.fee_bps, client)
    return (await _applications(request, [changed]))[0]


@api.post("/merchants/{merchant_id}/payments", response_model=PaidOut, openapi_extra=MEMBER)
async def charge(
    merchant_id: Member, body: ChargeRequest, principal: CurrentPrincipal, service: Pay
) -> PaidOut:
    result = await service.charge_code(
        principal.user_id,
        merchant_id,
        body.code.replace(" ", "").strip(),
        parse_money(body.amount, body.currency),
        body.order_id,
        body.store_id,
        body.coupon,
        parse_basket(body.items, body.currency),
    )
    return _paid(result)


@api.post(
    "/merchants/{merchant_id}/orders",
    response_model=OrderQrOut,
    status_code=201,
    openapi_extra=MEMBER,
)
async def order_qr(
    merchant_id: Member,
    body: OrderQrRequest,
    request: Request,
    principal: CurrentPrincipal,
    service: Pay,
) -> OrderQrOut:
    result = await service.create_order_qr(
        principal.user_id,
        merchant_id,
        parse_money(body.amount, body.currency),
        body.order_id,
        body.store_id,
    )
    token = await service.qr_token_of(result.payment.id) or ""
    url = f"{_base(request)}/pay/qr/{token}"
    return OrderQrOut(payment=payment_out(result.payment), qr_url=url, qr_svg=qr_svg(url))


@api.get(
    "/merchants/{merchant_id}/orders/{order_id}", response_model=PaymentOut, openapi_extra=MEMBER
)
async def order(
    merchant_id: Member, order_id: str, principal: CurrentPrincipal, service: Pay
) -> PaymentOut:
    return payment_out(await service.order(principal.user_id, merchant_id, order_id))


@api.post(
    "/merchants/{merchant_id}/orders/{order_id}/refunds",
    response_model=RefundOut,
    openapi_extra=MEMBER,
)
async def refund(
    merchant_id: Member,
    order_id: str,
    body: RefundRequest,
    principal: CurrentPrincipal,
    service: Pay,
) -> RefundOut:
    result = await service.refund(
        principal.user_id,
        merchant_id,
        order_id,
        body.refund_id,
        parse_money(body.amount, body.currency),
    )
    return RefundOut(
        refund_id=result.refund_id,
        amount=MoneyOut.of(result.amount),
        payment=payment_out(result.payment),
        merchant_balance=MoneyOut.of(result.merchant_balance),
    )


router = APIRouter()
router.include_router(api)
router.include_router(pages.router)
