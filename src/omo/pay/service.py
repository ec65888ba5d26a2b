"""Pay use cases: wallets, bank top-up and withdrawal, merchants, payment codes, merchant QR
codes, PIN, refunds, conversions and signed webhook notifications.

Every movement of money is one database transaction: coupon redemption (through
`omo.coupons.service`, with this transaction's session), the ledger transfer, the payment row
and its domain event commit together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal, Protocol, cast

import httpx
from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, ScalarSelect, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from omo.core import audit
from omo.core.audit import record_audit
from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.driver import DriverStatement
from omo.core.errors import ProblemError, register
from omo.core.events import (
    StoredEvent,
    consume,
    event_insert_cte,
    event_row,
    insert_event,
    record_event,
)
from omo.core.ids import new_id
from omo.core.money import Money, MoneyError, minor_units
from omo.core.outbound import RefusedDestination, check_destination
from omo.core.sqlite_inline import InlineConnection
from omo.coupons import service as coupons
from omo.pay import events
from omo.pay.bank import BankConnector, BankTimeout, Outcome, SandboxBank
from omo.pay.ledger import PLATFORM, AccountKey, Insufficient, Ledger, Leg
from omo.pay.models import (
    BankTransfer,
    Cashier,
    Merchant,
    Payment,
    PaymentCode,
    Pin,
    Refund,
    Store,
    WebhookDelivery,
)

register("invalid-amount", 422, "That amount cannot be paid")
register("erasure-blocked-by-balance", 409, "Your wallet still holds money")
register("webhook-url-refused", 422, "That webhook URL cannot be used")
register("basket-mismatch", 422, "The basket does not match the amount")
register("currency-mismatch", 422, "The currencies do not match")
register("insufficient-funds", 402, "Not enough money in the wallet")
register("merchant-insufficient-funds", 409, "Not enough money in the merchant account")
register("payment-code-invalid", 404, "That payment code is not valid")
register("payment-code-expired", 410, "That payment code has expired")
register("payment-code-used", 409, "That payment code was already used")
register("payment-code-device", 403, "That payment code belongs to another device")
register("pin-required", 403, "Confirm with your payment PIN")
register("pin-wrong", 403, "Wrong payment PIN")
register("pin-locked", 423, "Payment PIN locked")
register("pin-not-set", 409, "Set a payment PIN first")
register("pin-invalid", 422, "A payment PIN is 6 digits")
register("idempotency-conflict", 409, "That id was already used for a different request")
register("merchant-not-found", 404, "No such merchant")
register("merchant-forbidden", 403, "You do not work for this merchant")
register("organisation-taken", 409, "This organisation is already a merchant")
register("pay-not-operator", 403, "Only a platform operator may do this")
register("merchant-not-approved", 409, "This merchant cannot take payments yet")
register("merchant-review-invalid", 409, "This merchant application cannot be reviewed now")
register("store-not-found", 404, "No such store")
register("payment-not-found", 404, "No such payment")
register("payment-not-payable", 409, "This payment cannot be paid now")
register("payment-expired", 410, "This payment has expired")
register("refund-too-large", 409, "The refund is larger than what is left to refund")
register("refund-window-closed", 409, "Payments can be refunded within 365 days")
register("bank-declined", 402, "The bank declined the transfer")
register("unsupported-conversion", 422, "That conversion is not offered")

DIGITS = "0123456789"

# Audit actions of the operator's review of a merchant application.
MERCHANT_APPROVED = "merchant_approved"
MERCHANT_REJECTED = "merchant_rejected"
MERCHANT_FEE_CHANGED = "merchant_fee_changed"
MERCHANT_CACHE_SECONDS = 30.0

# Statements of the payment-code path, built once (building one costs more than running it).
_CODES = cast(Table, PaymentCode.__table__)
_PAYMENTS = cast(Table, Payment.__table__)
_VOID_DEVICE_CODES = (
    update(_CODES)
    .where(_CODES.c.session_id == bindparam("device"), _CODES.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
_INSERT_CODE = insert(_CODES)


def _claim_code_returning(*more: Any) -> Any:
    """Use a code up, returning its holder, their device and `more`. (Built whole each time:
    a statement derived with a second `.returning()` keeps the first one's memoized result
    columns once those were read.)"""
    return (
        update(_CODES)
        .where(
            _CODES.c.code == bindparam("the_code"),
            _CODES.c.used_at.is_(None),
            _CODES.c.expires_at > bindparam("now"),
        )
        .values(used_at=bindparam("now"))
        .returning(_CODES.c.user_id, _CODES.c.session_id, *more)
    )


_CLAIM_CODE = _claim_code_returning()
_CODE_USED_AT = select(_CODES.c.used_at).where(_CODES.c.code == bindparam("code"))
_INSERT_PAYMENT = insert(_PAYMENTS)
# The scan's statements on SQLite's driver connection (omo.core.driver).
_DRIVER_CLAIM_CODE = DriverStatement(_CLAIM_CODE)
# The code's issue too: it is half of every payment made with a code.
_DRIVER_VOID_DEVICE_CODES = DriverStatement(_VOID_DEVICE_CODES)
_DRIVER_INSERT_CODE = DriverStatement(
    _INSERT_CODE, column_keys=[column.key for column in _CODES.columns]
)
# PostgreSQL: void the device's codes and insert the new one in one statement, which is its
# own transaction (autocommit): one round trip instead of BEGIN, two statements and COMMIT.
# Both parts see the statement's snapshot, so the new code is not voided with the old ones.
# (Parameters named after no column: SQLAlchemy would add those to the UPDATE's SET.)
_ISSUE_CODE_PG = (
    insert(_CODES)
    .values(
        code=bindparam("new_code"),
        user_id=bindparam("new_user"),
        session_id=bindparam("new_session"),
        expires_at=bindparam("new_expires_at"),
    )
    .add_cte(_VOID_DEVICE_CODES.cte("voided"))
)
_DRIVER_INSERT_PAYMENT = DriverStatement(
    _INSERT_PAYMENT, column_keys=[column.key for column in _PAYMENTS.columns]
)
# PostgreSQL: the payment row and its outbox event in one statement (a data-modifying CTE).
_DRIVER_INSERT_PAYMENT_AND_EVENT_PG = DriverStatement(
    insert(_PAYMENTS).add_cte(event_insert_cte("event_")),
    column_keys=[column.key for column in _PAYMENTS.columns],
)


@dataclass
class PayConfig:
    """Operator settings of the pay context."""

    code_ttl_seconds: int = 60
    pending_ttl_seconds: int = 120
    dynamic_qr_ttl_seconds: int = 900
    refund_window_days: int = 365
    default_fee_bps: int = 60
    pin_attempts: int = 5
    pin_lock_minutes: int = 15
    # A payment of at least this many major units needs the PIN (per currency, else default).
    pin_threshold_major: dict[str, str] = field(
        default_factory=lambda: {"JPY": "30000", "KRW": "300000"}
    )
    default_pin_threshold_major: str = "1000"
    max_payment_major: str = "1000000"
    # Whether merchants' webhook URLs may point at loopback or private networks (omo.core.outbound).
    webhooks_to_private_networks: bool = False
    fx_rates: dict[tuple[str, str], str] = field(
        default_factory=lambda: {
            ("CNY", "EUR"): "0.128",
            ("EUR", "CNY"): "7.75",
            ("EUR", "JPY"): "162",
            ("JPY", "EUR"): "0.0061",
            ("CNY", "JPY"): "21",
            ("JPY", "CNY"): "0.047",
        }
    )
    webhook_attempts: int = 8
    bank_timeout_seconds: float = 10.0
    # A new merchant waits for a platform operator's approval before it takes payments. The
    # API turns it on whenever the platform names operators (OMO_OPERATORS); a platform
    # without operators (one shop, a demo) has nobody to ask, so merchants start approved.
    merchant_approval: bool = False


@dataclass(frozen=True, slots=True)
class MerchantView:
    id: uuid.UUID
    organisation_id: str
    name: str
    fee_bps: int
    webhook_url: str | None
    webhook_secret: str
    role: str
    status: str = "approved"
    review_reason: str | None = None


@dataclass(frozen=True, slots=True)
class MerchantApplication:
    """What an operator sees of a merchant application."""

    id: uuid.UUID
    organisation_id: str
    name: str
    owner_user_id: uuid.UUID
    status: str
    fee_bps: int
    created_at: datetime
    reviewed_at: datetime | None
    review_reason: str | None


@dataclass(frozen=True, slots=True)
class StoreView:
    id: uuid.UUID
    merchant_id: uuid.UUID
    name: str
    latitude: float | None
    longitude: float | None
    qr_token: str


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: uuid.UUID
    merchant_id: uuid.UUID
    merchant_name: str
    store_id: uuid.UUID | None
    order_id: str
    status: str
    amount: Money
    discount: Money
    paid: Money
    refunded: Money
    coupon_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class PaymentResult:
    payment: PaymentView
    balance: Money | None
    """The caller's side: the merchant's settlement balance, or the payer's wallet balance."""


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_id: str
    payment: PaymentView
    amount: Money
    merchant_balance: Money


@dataclass(frozen=True, slots=True)
class BankResult:
    id: uuid.UUID
    status: str
    amount: Money
    balances: list[Money]


@dataclass(frozen=True, slots=True)
class QrView:
    merchant_name: str
    store_name: str | None
    amount: Money | None
    order_id: str | None
    expires_at: datetime | None


SessionCheck = Callable[[uuid.UUID, uuid.UUID], Awaitable[bool]]


class SessionProbe(Protocol):
    """The identity context's device-session check as a column of the code's claim
    (identity's `session_expiry_column` and `session_active_until`)."""

    def session_expiry_column(
        self, user_id: ColumnElement[uuid.UUID], session_id: ColumnElement[uuid.UUID]
    ) -> ScalarSelect[datetime]: ...

    def session_active_until(self, session_id: uuid.UUID, expires_at: datetime | None) -> bool: ...


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _check_amount(money: Money, config: PayConfig) -> None:
    if money.amount_minor <= 0:
        raise ProblemError("invalid-amount", "The amount must be more than zero.")
    if money > Money.of(config.max_payment_major, money.currency):
        raise ProblemError("invalid-amount", "The amount is over the limit for one payment.")


class Line(Protocol):
    product: str
    amount: str


def parse_basket(items: Sequence[Line] | None, currency: str) -> list[tuple[str, int]] | None:
    """A basket from the edge (product code, decimal amount) in minor units."""
    if items is None:
        return None
    return [(line.product, parse_money(line.amount, currency).amount_minor) for line in items]


def parse_money(amount: str, currency: str) -> Money:
    try:
        return Money.of(amount, currency)
    except MoneyError as error:
        raise ProblemError(
            "invalid-amount", "Give a plain decimal amount in a known currency."
        ) from error


def _row_of(payment: Payment) -> dict[str, Any]:
    """The payment's columns for a Core INSERT; unset ones stay NULL (JSON too, not 'null')."""
    values = ((column.key, getattr(payment, column.key)) for column in _PAYMENTS.columns)
    return {key: value for key, value in values if value is not None}


def _proportional(total: int, part: int, whole: int) -> int:
    return total * part // whole if whole else 0


# What a payment event tells the merchant's server: never the payer's internal id (a brand
# sees people only through pseudonyms; the order id is what the merchant keys on).
_HIDDEN_FROM_MERCHANTS = frozenset({"user_id"})


def _merchant_view(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in _HIDDEN_FROM_MERCHANTS}


class PayService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: PayConfig | None = None,
        bank: BankConnector | None = None,
        session_active: SessionCheck | None = None,
        http: httpx.AsyncClient | None = None,
        sessions: SessionProbe | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.config = config or PayConfig()
        self.bank: BankConnector = bank or SandboxBank()
        self.ledger = Ledger(db, self._tx)
        self.session_active = session_active
        # PostgreSQL: `session_active` asked inside the code's claim (one round trip less);
        # only while `session_active` is set, which it answers the same as.
        self.sessions = sessions
        self._claims_pg: dict[tuple[bool, bool], DriverStatement] = {}
        self.http = http
        self._hasher = PasswordHasher()
        # SQLite has one writer: queueing our own writers here is far cheaper than letting
        # them collide in SQLite's busy handler, which sleeps.
        self.writer = asyncio.Lock() if db.is_sqlite else None
        self._roles: dict[tuple[uuid.UUID, uuid.UUID], str] = {}
        # Approved merchants, with when they were read (time.monotonic): fee and webhook
        # changes made by another worker process are seen within MERCHANT_CACHE_SECONDS.
        self._merchants: dict[uuid.UUID, tuple[Merchant, float]] = {}
        self._store_merchants: dict[uuid.UUID, uuid.UUID] = {}
        # SQLite: the payment codes' own connection (see `_issue_on_sqlite`); False: none.
        self._code_writer: InlineConnection | bool | None = None

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        async with self.writer or contextlib.nullcontext(), self.db.transaction() as session:
            yield session
        # Committed: the accounts it created are known for good.
        self.ledger.adopt(session)

    # -- wallets ----------------------------------------------------------------------------

    async def wallet(self, user_id: uuid.UUID) -> list[Money]:
        return await self.ledger.balances("user", str(user_id))

    async def refuse_erasure_while_holding_money(self, user_id: uuid.UUID) -> None:
        """Identity's erasure guard: erasing the account would strand the money in it."""
        wallet = await self.wallet(user_id)
        held = sorted(money.currency for money in wallet if money.amount_minor > 0)
        if held:
            raise ProblemError(
                "erasure-blocked-by-balance",
                "Withdraw your balance (%(currencies)s) to your bank first; nothing was erased.",
                params={"currencies": ", ".join(held)},
            )

    async def _wallet_in(self, user_id: uuid.UUID, currency: str) -> Money:
        for money in await self.wallet(user_id):
            if money.currency == currency:
                return money
        return Money.zero(currency)

    async def balance_at(self, user_id: uuid.UUID, currency: str, moment: datetime) -> Money:
        return await self.ledger.balance_at(AccountKey("user", str(user_id), currency), moment)

    async def merchant_balances(self, user_id: uuid.UUID, merchant_id: uuid.UUID) -> list[Money]:
        await self._require_role(user_id, merchant_id)
        return await self.ledger.balances("merchant", str(merchant_id))

    # -- bank link --------------------------------------------------------------------------

    async def _bank_call(self, call: Callable[[], Awaitable[Outcome]]) -> Outcome:
        try:
            return await asyncio.wait_for(call(), self.config.bank_timeout_seconds)
        except (BankTimeout, TimeoutError):
            return "unknown"

    async def _existing_bank(self, user_id: uuid.UUID, request_id: str) -> BankTransfer | None:
        async with self.db.sessions() as session:
            return await session.scalar(
                select(BankTransfer).where(
                    BankTransfer.user_id == user_id, BankTransfer.request_id == request_id
                )
            )

    async def _bank_result(self, row: BankTransfer) -> BankResult:
        return BankResult(
            row.id,
            row.status,
            Money(row.amount_minor, row.currency),
            await self.wallet(row.user_id),
        )

    async def top_up(
        self, user_id: uuid.UUID, request_id: str, bank_account: str, money: Money
    ) -> BankResult:
        """Pull money from the person's bank; idempotent per `request_id`."""
        _check_amount(money, self.config)
        existing = await self._existing_bank(user_id, request_id)
        if existing is not None:
            return await self._bank_result(self._same_bank(existing, "top-up", money))
        now = self.clock.now()
        await self.ledger.ensure(self._bank_keys(user_id, money.currency), now)
        row = BankTransfer(
            id=new_id(),
            user_id=user_id,
            request_id=request_id,
            direction="top-up",
            bank_account=bank_account,
            currency=money.currency,
            amount_minor=money.amount_minor,
            status="pending",
            created_at=now,
        )
        try:
            async with self._tx() as session:
                session.add(row)
        except IntegrityError:
            existing = await self._existing_bank(user_id, request_id)
            assert existing is not None
            return await self._bank_result(self._same_bank(existing, "top-up", money))
        outcome = await self._bank_call(lambda: self.bank.debit(bank_account, money, str(row.id)))
        row.status = await self._settle_bank(row, outcome)
        return await self._bank_result(row)

    async def withdraw(
        self, user_id: uuid.UUID, request_id: str, bank_account: str, money: Money
    ) -> BankResult:
        """Pay out to the person's bank: the wallet is debited first, restored if declined."""
        _check_amount(money, self.config)
        existing = await self._existing_bank(user_id, request_id)
        if existing is not None:
            return await self._bank_result(self._same_bank(existing, "withdrawal", money))
        now = self.clock.now()
        await self.ledger.ensure(self._bank_keys(user_id, money.currency), now)
        row = BankTransfer(
            id=new_id(),
            user_id=user_id,
            request_id=request_id,
            direction="withdrawal",
            bank_account=bank_account,
            currency=money.currency,
            amount_minor=money.amount_minor,
            status="pending",
            created_at=now,
        )
        try:
            async with self._tx() as session:
                session.add(row)
                await session.flush()
                await self._post(session, "withdrawal", str(row.id), self._bank_legs(row, -1), now)
                record_event(
                    session,
                    events.WalletWithdrawn(
                        user_id=user_id, currency=money.currency, amount_minor=money.amount_minor
                    ),
                    now,
                )
        except IntegrityError:
            existing = await self._existing_bank(user_id, request_id)
            assert existing is not None
            return await self._bank_result(self._same_bank(existing, "withdrawal", money))
        outcome = await self._bank_call(lambda: self.bank.credit(bank_account, money, str(row.id)))
        row.status = await self._settle_bank(row, outcome)
        return await self._bank_result(row)

    def _same_bank(self, row: BankTransfer, direction: str, money: Money) -> BankTransfer:
        if (row.direction, row.currency, row.amount_minor) != (
            direction,
            money.currency,
            money.amount_minor,
        ):
            raise ProblemError("idempotency-conflict", "Use a new request id for a new transfer.")
        return row

    def _bank_keys(self, user_id: uuid.UUID, currency: str) -> list[AccountKey]:
        return [AccountKey("user", str(user_id), currency), AccountKey("bank", PLATFORM, currency)]

    def _bank_legs(self, row: BankTransfer, sign: int) -> list[Leg]:
        user, bank = self._bank_keys(row.user_id, row.currency)
        return [Leg(user, sign * row.amount_minor), Leg(bank, -sign * row.amount_minor)]

    async def _settle_bank(self, row: BankTransfer, outcome: Outcome) -> str:
        """Apply the bank's answer once (a conditional status change guards the ledger)."""
        if outcome == "unknown":
            return "pending"
        now = self.clock.now()
        status = "succeeded" if outcome == "succeeded" else "declined"
        async with self._tx() as session:
            changed = await session.execute(
                update(BankTransfer)
                .where(BankTransfer.id == row.id, BankTransfer.status == "pending")
                .values(status=status)
            )
            if not changed.rowcount:  # type: ignore[attr-defined]
                current = await session.scalar(
                    select(BankTransfer.status).where(BankTransfer.id == row.id)
                )
                return str(current)
            if row.direction == "top-up" and status == "succeeded":
                await self._post(session, "top-up", str(row.id), self._bank_legs(row, 1), now)
                record_event(
                    session,
                    events.WalletToppedUp(
                        user_id=row.user_id, currency=row.currency, amount_minor=row.amount_minor
                    ),
                    now,
                )
            if row.direction == "withdrawal" and status == "declined":
                await self._post(
                    session, "withdrawal-reversal", str(row.id), self._bank_legs(row, 1), now
                )
        return status

    async def reconcile_bank(self) -> int:
        """Ask the bank about transfers whose answer was lost; apply late outcomes."""
        async with self.db.sessions() as session:
            pending = (
                await session.scalars(select(BankTransfer).where(BankTransfer.status == "pending"))
            ).all()
        settled = 0
        for row in pending:
            outcome = await self._bank_call(functools.partial(self.bank.status, str(row.id)))
            if await self._settle_bank(row, outcome) != "pending":
                settled += 1
        return settled

    # -- currency conversion ----------------------------------------------------------------

    async def convert(self, user_id: uuid.UUID, money: Money, to_currency: str) -> list[Money]:
        """Sell `money` for `to_currency` at the quoted rate: a recorded pair of transfers."""
        _check_amount(money, self.config)
        rate_text = self.config.fx_rates.get((money.currency, to_currency))
        if rate_text is None:
            raise ProblemError("unsupported-conversion", "Pick another pair of currencies.")
        rate = Decimal(rate_text)
        shift = Decimal(10) ** (minor_units(to_currency) - minor_units(money.currency))
        bought = int((money.amount_minor * rate * shift).to_integral_value(ROUND_DOWN))
        if bought <= 0:
            raise ProblemError("invalid-amount", "The amount is too small to convert.")
        owner = str(user_id)
        keys = [
            AccountKey("user", owner, money.currency),
            AccountKey("fx", PLATFORM, money.currency),
            AccountKey("user", owner, to_currency),
            AccountKey("fx", PLATFORM, to_currency),
        ]
        now = self.clock.now()
        await self.ledger.ensure(keys, now)
        reference = str(new_id())
        async with self._tx() as session:
            await self._post(
                session,
                "fx-sell",
                reference,
                [Leg(keys[0], -money.amount_minor), Leg(keys[1], money.amount_minor)],
                now,
                rate=rate_text,
            )
            await self._post(
                session,
                "fx-buy",
                reference,
                [Leg(keys[3], -bought), Leg(keys[2], bought)],
                now,
                rate=rate_text,
            )
        return await self.wallet(user_id)

    # -- merchants --------------------------------------------------------------------------

    async def create_merchant(
        self,
        owner: uuid.UUID,
        organisation_id: str,
        name: str,
        webhook_url: str | None = None,
        *,
        approved: bool = False,
    ) -> MerchantView:
        """The organisation applies for merchant status. It may take payments once a platform
        operator approves it (`review_merchant`), unless the platform has no approval step
        (`PayConfig.merchant_approval`) or a trusted seed (`approved`, the demo) creates it."""
        await self._check_webhook_url(webhook_url)
        pending = self.config.merchant_approval and not approved
        merchant = Merchant(
            id=new_id(),
            organisation_id=organisation_id,
            name=name,
            owner_user_id=owner,
            fee_bps=self.config.default_fee_bps,
            webhook_url=webhook_url,
            webhook_secret=secrets.token_urlsafe(32),
            created_at=self.clock.now(),
            status="pending" if pending else "approved",
        )
        try:
            async with self._tx() as session:
                session.add(merchant)
                await session.flush()
                session.add(Cashier(merchant_id=merchant.id, user_id=owner, role="owner"))
        except IntegrityError as error:
            raise ProblemError(
                "organisation-taken", "Each organisation has one merchant account."
            ) from error
        return self._merchant_view(merchant, "owner")

    def _merchant_view(self, merchant: Merchant, role: str) -> MerchantView:
        return MerchantView(
            merchant.id,
            merchant.organisation_id,
            merchant.name,
            merchant.fee_bps,
            merchant.webhook_url,
            merchant.webhook_secret,
            role,
            merchant.status,
            merchant.review_reason,
        )

    async def _merchant(self, merchant_id: uuid.UUID) -> Merchant:
        cached = self._merchants.get(merchant_id)
        if cached is not None and time.monotonic() - cached[1] < MERCHANT_CACHE_SECONDS:
            return cached[0]
        async with self.db.reads() as session:
            merchant = await session.get(Merchant, merchant_id)
        if merchant is None:
            raise ProblemError("merchant-not-found", "Check the merchant id.")
        if merchant.status == "approved":
            # Approval is for good; a merchant still waiting is read again next time, so an
            # approval by an operator on another worker process is seen at once.
            self._merchants[merchant_id] = (merchant, time.monotonic())
        return merchant

    async def _require_approved(self, merchant_id: uuid.UUID) -> None:
        merchant = await self._merchant(merchant_id)
        if merchant.status == "rejected":
            raise ProblemError(
                "merchant-not-approved",
                "The platform's operator rejected this merchant: %(reason)s",
                params={"reason": merchant.review_reason or ""},
            )
        if merchant.status != "approved":
            raise ProblemError(
                "merchant-not-approved",
                "This merchant takes payments once the platform's operator approves it.",
            )

    # -- operator review of merchant applications --------------------------------------------

    def _application(self, merchant: Merchant) -> MerchantApplication:
        return MerchantApplication(
            merchant.id,
            merchant.organisation_id,
            merchant.name,
            merchant.owner_user_id,
            merchant.status,
            merchant.fee_bps,
            merchant.created_at,
            merchant.reviewed_at,
            merchant.review_reason,
        )

    async def merchant_applications(
        self, status: str | None = "pending", limit: int = 100
    ) -> list[MerchantApplication]:
        """Operator view: merchants by review status, oldest application first."""
        query = select(Merchant).order_by(Merchant.created_at, Merchant.id).limit(limit)
        if status is not None:
            query = query.where(Merchant.status == status)
        async with self.db.sessions() as session:
            rows = (await session.scalars(query)).all()
        return [self._application(row) for row in rows]

    async def review_merchant(
        self,
        operator: uuid.UUID,
        merchant_id: uuid.UUID,
        decision: Literal["approve", "reject"],
        reason: str | None = None,
        client_address: str | None = None,
    ) -> MerchantApplication:
        """A platform operator approves or rejects a pending application (a reason is needed
        to reject). Written to the operator's and to the merchant owner's audit trail, in the
        same commit."""
        reason = (reason or "").strip() or None
        if decision == "reject" and reason is None:
            raise ProblemError("merchant-review-invalid", "Say why the application is rejected.")
        now = self.clock.now()
        status = "approved" if decision == "approve" else "rejected"
        async with self._tx() as session:
            merchant = await session.get(Merchant, merchant_id)
            if merchant is None:
                raise ProblemError("merchant-not-found", "Check the merchant id.")
            if merchant.status != "pending":
                raise ProblemError(
                    "merchant-review-invalid",
                    "This merchant was already reviewed (%(status)s).",
                    params={"status": merchant.status},
                )
            merchant.status, merchant.reviewed_by = status, operator
            merchant.reviewed_at, merchant.review_reason = now, reason
            detail = {
                "merchant_id": str(merchant_id),
                "organisation_id": merchant.organisation_id,
                "decision": status,
                "reason": reason,
            }
            action = MERCHANT_APPROVED if status == "approved" else MERCHANT_REJECTED
            record_audit(
                session,
                account_id=operator,
                action=action,
                occurred_at=now,
                client_address=client_address,
                detail=detail,
            )
            if merchant.owner_user_id != operator:
                record_audit(
                    session,
                    account_id=merchant.owner_user_id,
                    action=action,
                    actor="operator",
                    occurred_at=now,
                    detail=detail,
                )
            application = self._application(merchant)
        self._merchants.pop(merchant_id, None)
        return application

    async def reapply(self, owner: uuid.UUID, merchant_id: uuid.UUID) -> MerchantView:
        """The owner of a rejected merchant applies again (after fixing what was wrong)."""
        await self._require_role(owner, merchant_id, owner=True)
        async with self._tx() as session:
            changed = await session.execute(
                update(Merchant)
                .where(Merchant.id == merchant_id, Merchant.status == "rejected")
                .values(status="pending")
            )
            if not changed.rowcount:  # type: ignore[attr-defined]
                raise ProblemError(
                    "merchant-review-invalid", "Only a rejected application can be made again."
                )
        return await self.merchant(owner, merchant_id)

    async def _require_role(
        self, user_id: uuid.UUID, merchant_id: uuid.UUID, owner: bool = False
    ) -> str:
        role = self._roles.get((merchant_id, user_id))
        if role is None:
            await self._merchant(merchant_id)
            async with self.db.reads() as session:
                role = await session.scalar(
                    select(Cashier.role).where(
                        Cashier.merchant_id == merchant_id, Cashier.user_id == user_id
                    )
                )
            if role is None:
                raise ProblemError("merchant-forbidden", "Ask the merchant's owner for access.")
            self._roles[(merchant_id, user_id)] = role
        if owner and role != "owner":
            raise ProblemError("merchant-forbidden", "Only the owner can do this.")
        return role

    async def role(self, user_id: uuid.UUID, merchant_id: uuid.UUID) -> str:
        """The person's role at the merchant ("owner" or "cashier"), from the process's cache
        once known; `merchant-forbidden` if they have none."""
        return await self._require_role(user_id, merchant_id)

    async def my_merchants(self, user_id: uuid.UUID) -> list[MerchantView]:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Merchant, Cashier.role)
                .join(Cashier, Cashier.merchant_id == Merchant.id)
                .where(Cashier.user_id == user_id)
                .order_by(Merchant.name)
            )
            return [self._merchant_view(merchant, role) for merchant, role in rows]

    async def merchant(self, user_id: uuid.UUID, merchant_id: uuid.UUID) -> MerchantView:
        role = await self._require_role(user_id, merchant_id)
        async with self.db.sessions() as session:
            merchant = await session.get(Merchant, merchant_id)
        assert merchant is not None
        return self._merchant_view(merchant, role)

    async def merchant_brand(self, merchant_id: uuid.UUID) -> tuple[str, str]:
        """(organisation id, name) of a merchant: what other contexts may know of it (the
        official accounts context sends receipts from the organisation's account)."""
        merchant = await self._merchant(merchant_id)
        return merchant.organisation_id, merchant.name

    async def update_merchant(
        self, user_id: uuid.UUID, merchant_id: uuid.UUID, webhook_url: str | None
    ) -> MerchantView:
        await self._require_role(user_id, merchant_id, owner=True)
        await self._check_webhook_url(webhook_url)
        async with self._tx() as session:
            merchant = await session.get(Merchant, merchant_id)
            assert merchant is not None
            merchant.webhook_url = webhook_url
        self._merchants.pop(merchant_id, None)
        return self._merchant_view(merchant, "owner")

    async def set_fee(
        self,
        operator: uuid.UUID,
        merchant_id: uuid.UUID,
        fee_bps: int,
        client_address: str | None = None,
    ) -> MerchantApplication:
        """Operator action: the platform's fee per transaction, in basis points (payments from
        then on; other worker processes apply it within MERCHANT_CACHE_SECONDS). Audited."""
        if not 0 <= fee_bps <= 10_000:
            raise ProblemError("invalid-amount", "A fee is between 0 and 10000 basis points.")
        now = self.clock.now()
        async with self._tx() as session:
            merchant = await session.get(Merchant, merchant_id)
            if merchant is None:
                raise ProblemError("merchant-not-found", "Check the merchant id.")
            before, merchant.fee_bps = merchant.fee_bps, fee_bps
            record_audit(
                session,
                account_id=operator,
                action=MERCHANT_FEE_CHANGED,
                occurred_at=now,
                client_address=client_address,
                detail={"merchant_id": str(merchant_id), "before": before, "after": fee_bps},
            )
            application = self._application(merchant)
        self._merchants.pop(merchant_id, None)
        return application

    async def add_cashier(
        self, owner: uuid.UUID, merchant_id: uuid.UUID, cashier_user_id: uuid.UUID
    ) -> None:
        await self._require_role(owner, merchant_id, owner=True)
        async with self._tx() as session:
            if await session.get(Cashier, (merchant_id, cashier_user_id)) is None:
                session.add(Cashier(merchant_id=merchant_id, user_id=cashier_user_id))

    async def add_store(
        self,
        owner: uuid.UUID,
        merchant_id: uuid.UUID,
        name: str,
        latitude: float | None = None,
        longitude: float | None = None,
    ) -> StoreView:
        await self._require_role(owner, merchant_id, owner=True)
        store = Store(
            id=new_id(),
            merchant_id=merchant_id,
            name=name,
            latitude=latitude,
            longitude=longitude,
            qr_token=secrets.token_urlsafe(18),
            created_at=self.clock.now(),
        )
        async with self._tx() as session:
            session.add(store)
        return self._store_view(store)

    def _store_view(self, store: Store) -> StoreView:
        return StoreView(
            store.id, store.merchant_id, store.name, store.latitude, store.longitude, store.qr_token
        )

    async def stores(self, merchant_id: uuid.UUID) -> list[StoreView]:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(Store).where(Store.merchant_id == merchant_id).order_by(Store.name)
            )
            return [self._store_view(store) for store in rows]

    async def _store_of(self, merchant_id: uuid.UUID, store_id: uuid.UUID | None) -> None:
        if store_id is None:
            return
        owner = self._store_merchants.get(store_id)
        if owner is None:
            async with self.db.reads() as session:
                owner = await session.scalar(select(Store.merchant_id).where(Store.id == store_id))
            if owner is not None:
                # A store never changes merchant.
                self._store_merchants[store_id] = owner
        if owner != merchant_id:
            raise ProblemError("store-not-found", "Check the store id.")

    # -- payment PIN ------------------------------------------------------------------------

    async def set_pin(self, user_id: uuid.UUID, pin: str, current: str | None) -> None:
        if len(pin) != 6 or not pin.isdigit():
            raise ProblemError("pin-invalid", "Choose 6 digits.")
        async with self.db.sessions() as session:
            existing = await session.get(Pin, user_id)
        if existing is not None:
            await self.check_pin(user_id, current or "")
        hashed = await to_thread.run_sync(self._hasher.hash, pin)
        async with self._tx() as session:
            row = await session.get(Pin, user_id)
            if row is None:
                session.add(Pin(user_id=user_id, pin_hash=hashed, failed_attempts=0))
            else:
                row.pin_hash, row.failed_attempts, row.locked_until = hashed, 0, None

    async def has_pin(self, user_id: uuid.UUID) -> bool:
        async with self.db.sessions() as session:
            return await session.get(Pin, user_id) is not None

    async def check_pin(self, user_id: uuid.UUID, pin: str) -> None:
        """Verify the PIN; five wrong tries in a row lock it for a while."""
        now = self.clock.now()
        async with self.db.sessions() as session:
            row = await session.get(Pin, user_id)
        if row is None:
            raise ProblemError("pin-not-set", "Set a payment PIN in your wallet.")
        if row.locked_until is not None and row.locked_until > now:
            raise ProblemError("pin-locked", "Too many wrong PINs; try again later.")
        ok: bool = False
        with contextlib.suppress(VerificationError, InvalidHashError):
            ok = bool(await to_thread.run_sync(self._hasher.verify, row.pin_hash, pin))
        async with self._tx() as session:
            if ok:
                await session.execute(
                    update(Pin).where(Pin.user_id == user_id).values(failed_attempts=0)
                )
                return
            failed = await session.scalar(
                update(Pin)
                .where(Pin.user_id == user_id)
                .values(failed_attempts=Pin.failed_attempts + 1)
                .returning(Pin.failed_attempts)
            )
            if failed is not None and failed >= self.config.pin_attempts:
                await session.execute(
                    update(Pin)
                    .where(Pin.user_id == user_id)
                    .values(
                        failed_attempts=0,
                        locked_until=now + timedelta(minutes=self.config.pin_lock_minutes),
                    )
                )
        if failed is not None and failed >= self.config.pin_attempts:
            raise ProblemError("pin-locked", "Too many wrong PINs; try again later.")
        raise ProblemError("pin-wrong", "Check the PIN and try again.")

    def _needs_pin(self, money: Money) -> bool:
        threshold = self.config.pin_threshold_major.get(
            money.currency, self.config.default_pin_threshold_major
        )
        return money >= Money.of(threshold, money.currency)

    # -- payment codes ----------------------------------------------------------------------

    async def issue_code(self, user_id: uuid.UUID, session_id: uuid.UUID) -> IssuedCode:
        """A fresh 18-digit code for this device; the device's older codes stop working."""
        now = self.clock.now()
        expires_at = now + timedelta(seconds=self.config.code_ttl_seconds)
        code = "28" + str(secrets.randbelow(10**16)).zfill(16)
        if not self.db.is_sqlite:
            new = {"new_code": code, "new_user": user_id, "new_session": session_id}
            new |= {"new_expires_at": expires_at, "device": session_id, "now": now}
            async with self.db.reader.connect() as autocommit:  # used_at: NULL
                await autocommit.execute(_ISSUE_CODE_PG, new)
            return IssuedCode(code, expires_at)
        row = {"code": code, "user_id": user_id, "session_id": session_id}
        row |= {"expires_at": expires_at, "used_at": None}
        void = {"device": session_id, "now": now}
        if not await self._issue_on_sqlite(void, row):
            async with self._tx() as session:
                await _DRIVER_VOID_DEVICE_CODES.rows(session, void)
                await _DRIVER_INSERT_CODE.rows(session, row)
        return IssuedCode(code, expires_at)

    async def _issue_on_sqlite(self, void: dict[str, Any], row: dict[str, Any]) -> bool:
        """SQLite: void the device's codes and insert the new one on a connection of the
        codes' own, in one BEGIN IMMEDIATE … COMMIT behind the service's writer lock: no
        session, pool checkout or greenlet hop for half of every payment. False where there
        is none (other databases, an in-memory SQLite): the caller uses a session."""
        if self.writer is None or self._code_writer is False:
            return False
        dialect = self.db.engine.dialect
        async with self.writer:
            if self._code_writer is None:
                self._code_writer = await self.db.sqlite_writer() or False
            connection = self._code_writer
            if not isinstance(connection, InlineConnection):
                return False
            async with connection.immediate():
                await _DRIVER_VOID_DEVICE_CODES.on_sqlite(connection, dialect, void)
                await _DRIVER_INSERT_CODE.on_sqlite(connection, dialect, row)
        return True

    async def close(self) -> None:
        """Closes the codes' own SQLite connection, if one was opened."""
        connection, self._code_writer = self._code_writer, None
        if isinstance(connection, InlineConnection):
            await connection.close()

    def _claim_pg(self, sessions: SessionProbe | None, coupons_too: bool) -> DriverStatement:
        """PostgreSQL: the code's claim returning also the device session's expiry (when
        `sessions`) and `coupons.anything_for_payment`'s answers (when `coupons_too`), read
        in the claim's own snapshot: the checks made after it, one round trip instead of up
        to three. Built once per service (the probe is the identity service's)."""
        key = (sessions is not None, coupons_too)
        claim = self._claims_pg.get(key)
        if claim is None:
            columns: list[Any] = []
            if sessions is not None:
                expiry = sessions.session_expiry_column(_CODES.c.user_id, _CODES.c.session_id)
                columns.append(expiry.correlate(_CODES))
            if coupons_too:
                coupon, award = coupons.anything_for_payment_columns(_CODES.c.user_id)
                columns += [coupon.correlate(_CODES), award]
            claim = self._claims_pg[key] = DriverStatement(_claim_code_returning(*columns))
        return claim

    async def _claim_code(
        self,
        session: AsyncSession,
        code: str,
        now: datetime,
        probe: tuple[uuid.UUID, Money] | None = None,
    ) -> tuple[uuid.UUID, uuid.UUID, bool | None]:
        """Use the code up, inside the payment's transaction: its holder, their device, and,
        when `probe` (merchant, amount) is given, on PostgreSQL, `coupons.anything_for_payment`
        for the payment (else None: not asked)."""
        params: dict[str, Any] = {"the_code": code, "now": now}
        sessions = self.sessions if self.session_active is not None else None
        folded = not self.db.is_sqlite and (sessions is not None or probe is not None)
        if folded:
            if probe is not None:
                merchant_id, amount = probe
                params |= {
                    "merchant": str(merchant_id),
                    "currency": amount.currency,
                    "paid": amount.amount_minor,
                }
            claimed = await self._claim_pg(sessions, probe is not None).first(session, params)
        else:
            claimed = await _DRIVER_CLAIM_CODE.first(session, params)
        if claimed is None:
            row = (await session.execute(_CODE_USED_AT, {"code": code})).first()
            if row is None:
                raise ProblemError(
                    "payment-code-invalid", "Ask the customer to show the code again."
                )
            if row.used_at is not None:
                raise ProblemError("payment-code-used", "Ask the customer to show a new code.")
            raise ProblemError("payment-code-expired", "Ask the customer to show a new code.")
        user_id, session_id, *rest = claimed
        if folded and sessions is not None:
            if not sessions.session_active_until(session_id, rest.pop(0)):
                raise ProblemError("payment-code-device", "That device is logged out.")
        elif self.session_active and not await self.session_active(user_id, session_id):
            raise ProblemError("payment-code-device", "That device is logged out.")
        anything = bool(rest[0] or rest[1]) if folded and probe is not None else None
        return user_id, session_id, anything

    # -- paying -----------------------------------------------------------------------------

    async def _existing_payment(self, merchant_id: uuid.UUID, order_id: str) -> Payment | None:
        async with self.db.reads() as session:
            return await session.scalar(
                select(Payment).where(
                    Payment.merchant_id == merchant_id, Payment.order_id == order_id
                )
            )

    def _replay(self, payment: Payment, request_hash: str) -> Payment:
        if payment.request_hash != request_hash:
            raise ProblemError("idempotency-conflict", "Use a new order id for a new payment.")
        return payment

    async def view(self, payment: Payment) -> PaymentView:
        merchant = await self._merchant(payment.merchant_id)
        currency = payment.currency
        return PaymentView(
            id=payment.id,
            merchant_id=payment.merchant_id,
            merchant_name=merchant.name,
            store_id=payment.store_id,
            order_id=payment.order_id,
            status=self._status(payment),
            amount=Money(payment.amount_minor, currency),
            discount=Money(payment.discount_minor, currency),
            paid=Money(payment.amount_minor - payment.discount_minor, currency),
            refunded=Money(payment.refunded_minor, currency),
            coupon_id=payment.coupon_id,
            created_at=payment.created_at,
            expires_at=payment.expires_at,
            paid_at=payment.paid_at,
        )

    def _status(self, payment: Payment) -> str:
        waiting = payment.status in ("pending-pin", "awaiting-customer")
        if waiting and payment.expires_at and payment.expires_at <= self.clock.now():
            return "expired"
        return payment.status

    async def _merchant_result(self, payment: Payment) -> PaymentResult:
        balance = await self._merchant_balance(payment.merchant_id, payment.currency)
        return PaymentResult(await self.view(payment), balance)

    async def _merchant_balance(self, merchant_id: uuid.UUID, currency: str) -> Money:
        for money in await self.ledger.balances("merchant", str(merchant_id)):
            if money.currency == currency:
                return money
        return Money.zero(currency)

    def _payment_keys(
        self, user_id: uuid.UUID, merchant_id: uuid.UUID, currency: str
    ) -> list[AccountKey]:
        return [
            AccountKey("user", str(user_id), currency),
            AccountKey("merchant", str(merchant_id), currency),
            AccountKey("fee", PLATFORM, currency),
        ]

    async def _execute(
        self,
        session: AsyncSession,
        payment: Payment,
        coupon: uuid.UUID | Literal["auto", "none"],
        insert: bool = False,
        anything: bool | None = None,
    ) -> dict[AccountKey, int]:
        """Redeem the coupon and move the money, inside the caller's transaction; `insert`
        writes the (new, not ORM-tracked) payment row too; `anything`: the answer of
        `coupons.anything_for_payment` when the caller has it already (the code's claim).

        The money moves last: on PostgreSQL the balance update locks the merchant's and the
        platform's accounts, which every payment to the merchant needs, until COMMIT; the
        coupon, the award, the event and the payment row are written before it."""
        assert payment.user_id is not None
        now = self.clock.now()
        amount = Money(payment.amount_minor, payment.currency)
        discount: coupons.Discount | None = None
        merchant_ref, store_ref = (
            str(payment.merchant_id),
            (str(payment.store_id) if payment.store_id else None),
        )
        items = [(str(p), int(a)) for p, a in payment.items] if payment.items else None
        awards = True
        if anything is None and coupon == "auto":
            anything = await coupons.anything_for_payment(
                session, user_id=payment.user_id, merchant_id=merchant_ref, amount=amount, now=now
            )
        if coupon == "auto" and not anything:
            # No coupon to choose and no award to earn (the payment is not discounted).
            coupon, awards = "none", False
        if coupon == "auto":
            best = await coupons.best_discount(
                session,
                user_id=payment.user_id,
                merchant_id=merchant_ref,
                store_id=store_ref,
                amount=amount,
                now=now,
                items=items,
            )
            coupon = best.coupon_id if best else "none"
        if isinstance(coupon, uuid.UUID):
            discount = await coupons.redeem(
                session,
                coupon_id=coupon,
                user_id=payment.user_id,
                merchant_id=merchant_ref,
                store_id=store_ref,
                amount=amount,
                payment_ref=str(payment.id),
                now=now,
                items=items,
            )
        merchant = await self._merchant(payment.merchant_id)
        fee = payment.amount_minor * merchant.fee_bps // 10_000
        user, merchant_key, fee_key = self._payment_keys(
            payment.user_id, payment.merchant_id, payment.currency
        )
        legs = [Leg(merchant_key, payment.amount_minor - fee), Leg(fee_key, fee)]
        paid = payment.amount_minor
        if discount is not None:
            funding = AccountKey("coupon", discount.issuer, payment.currency)
            await self.ledger.ensure_in(session, [funding], now)
            legs.append(Leg(funding, -discount.amount.amount_minor))
            paid -= discount.amount.amount_minor
            payment.coupon_id, payment.coupon_issuer = discount.coupon_id, discount.issuer
            payment.discount_minor = discount.amount.amount_minor
        legs.append(Leg(user, -paid))
        payment.fee_minor, payment.status, payment.paid_at = fee, "succeeded", now
        if awards:
            await coupons.award_after_payment(
                session,
                user_id=payment.user_id,
                merchant_id=merchant_ref,
                paid=Money(paid, payment.currency),
                payment_ref=str(payment.id),
                now=now,
            )
        succeeded = events.PaymentSucceeded(
            payment_id=payment.id,
            merchant_id=payment.merchant_id,
            store_id=payment.store_id,
            order_id=payment.order_id,
            user_id=payment.user_id,
            currency=payment.currency,
            amount_minor=payment.amount_minor,
            discount_minor=payment.discount_minor,
            coupon_id=payment.coupon_id,
        )
        if insert and not self.db.is_sqlite:
            # One round trip for the payment row and its event.
            event = {"event_" + key: value for key, value in event_row(succeeded, now).items()}
            await _DRIVER_INSERT_PAYMENT_AND_EVENT_PG.rows(session, _row_of(payment) | event)
        else:
            await insert_event(session, succeeded, now)
            if insert:
                await _DRIVER_INSERT_PAYMENT.rows(session, _row_of(payment))
        return await self._post(session, "payment", str(payment.id), legs, now)

    async def _post(
        self,
        session: AsyncSession,
        kind: str,
        reference: str,
        legs: list[Leg],
        now: datetime,
        rate: str | None = None,
    ) -> dict[AccountKey, int]:
        try:
            return await self.ledger.post(session, kind, reference, legs, now, rate)
        except Insufficient as short:
            if short.key.kind == "merchant":
                raise ProblemError(
                    "merchant-insufficient-funds", "Top up the settlement account first."
                ) from short
            raise ProblemError(
                "insufficient-funds", "Top up the wallet or pay a smaller amount."
            ) from short

    async def charge_code(
        self,
        cashier: uuid.UUID,
        merchant_id: uuid.UUID,
        code: str,
        money: Money,
        order_id: str,
        store_id: uuid.UUID | None = None,
        coupon: Literal["auto", "none"] = "auto",
        items: Sequence[tuple[str, int]] | None = None,
    ) -> PaymentResult:
        """The merchant scanned the customer's payment code: pay now, or wait for the PIN.
        `items` is the basket (product code, amount), for coupons that are for products.

        One transaction: claim the code, redeem the coupon, move the money, insert the payment.
        The order id is the idempotency key: nothing is read for it up front; a retry fails on
        the used code or on the unique (merchant, order id), and is then answered with the
        first payment (or `idempotency-conflict` when the request differs)."""
        await self._require_role(cashier, merchant_id)
        await self._require_approved(merchant_id)
        basket = _check_basket(items, money)
        parts: list[object] = ["code", code, money.amount_minor, money.currency, store_id, coupon]
        request_hash = _digest(*parts, *([basket] if basket is not None else []))
        now = self.clock.now()
        payment = Payment(
            id=new_id(),
            merchant_id=merchant_id,
            store_id=store_id,
            order_id=order_id,
            currency=money.currency,
            amount_minor=money.amount_minor,
            discount_minor=0,
            fee_minor=0,
            refunded_minor=0,
            status="pending-pin",
            request_hash=request_hash,
            created_at=now,
            items=basket,
        )
        after: dict[AccountKey, int] | None = None
        try:
            _check_amount(money, self.config)
            await self._store_of(merchant_id, store_id)
            needs_pin = self._needs_pin(money)
            probe = None if needs_pin or coupon != "auto" else (merchant_id, money)
            async with self._tx() as session:
                payment.user_id, payment.session_id, anything = await self._claim_code(
                    session, code, now, probe
                )
                if needs_pin:
                    payment.expires_at = now + timedelta(seconds=self.config.pending_ttl_seconds)
                    await session.execute(_INSERT_PAYMENT, _row_of(payment))
                else:
                    after = await self._execute(
                        session, payment, coupon, insert=True, anything=anything
                    )
        except (ProblemError, IntegrityError):
            existing = await self._existing_payment(merchant_id, order_id)
            if existing is not None:
                return await self._merchant_result(self._replay(existing, request_hash))
            raise
        if after is None:
            return await self._merchant_result(payment)
        merchant_key = AccountKey("merchant", str(merchant_id), money.currency)
        return PaymentResult(await self.view(payment), Money(after[merchant_key], money.currency))

    async def pending_for(self, user_id: uuid.UUID, session_id: uuid.UUID) -> list[PaymentView]:
        """Payments of this device waiting for the customer's PIN."""
        now = self.clock.now()
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(Payment)
                    .where(
                        Payment.user_id == user_id,
                        Payment.session_id == session_id,
                        Payment.status == "pending-pin",
                        Payment.expires_at > now,
                    )
                    .order_by(Payment.created_at)
                )
            ).all()
        return [await self.view(row) for row in rows]

    async def confirm(
        self, user_id: uuid.UUID, session_id: uuid.UUID, payment_id: uuid.UUID, pin: str
    ) -> PaymentResult:
        """The customer confirms a pending payment with the PIN, on the device that showed it."""
        async with self.db.sessions() as session:
            payment = await session.get(Payment, payment_id)
        if payment is None or payment.user_id != user_id:
            raise ProblemError("payment-not-found", "Check the payment id.")
        if payment.session_id != session_id:
            raise ProblemError("payment-code-device", "Confirm on the device that showed the code.")
        if payment.status == "succeeded":
            return PaymentResult(
                await self.view(payment), await self._wallet_in(user_id, payment.currency)
            )
        if self._status(payment) == "expired":
            raise ProblemError("payment-expired", "Ask the cashier to scan a new code.")
        await self.check_pin(user_id, pin)
        async with self._tx() as session:
            claimed = await session.execute(
                update(Payment)
                .where(Payment.id == payment_id, Payment.status == "pending-pin")
                .values(status="paying")
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                raise ProblemError("payment-not-payable", "This payment was already handled.")
            row = await session.get(Payment, payment_id)
            assert row is not None
            after = await self._execute(session, row, "auto")
        key = AccountKey("user", str(user_id), row.currency)
        return PaymentResult(await self.view(row), Money(after[key], row.currency))

    # -- merchant QR codes (the customer scans the merchant) --------------------------------

    async def create_order_qr(
        self,
        cashier: uuid.UUID,
        merchant_id: uuid.UUID,
        money: Money,
        order_id: str,
        store_id: uuid.UUID | None = None,
    ) -> PaymentResult:
        """A dynamic QR code for one order: fixed amount, expires."""
        await self._require_role(cashier, merchant_id)
        request_hash = _digest("qr", money.amount_minor, money.currency, store_id)
        existing = await self._existing_payment(merchant_id, order_id)
        if existing is not None:
            return await self._merchant_result(self._replay(existing, request_hash))
        _check_amount(money, self.config)
        await self._store_of(merchant_id, store_id)
        now = self.clock.now()
        payment = Payment(
            id=new_id(),
            merchant_id=merchant_id,
            store_id=store_id,
            order_id=order_id,
            currency=money.currency,
            amount_minor=money.amount_minor,
            discount_minor=0,
            fee_minor=0,
            refunded_minor=0,
            status="awaiting-customer",
            qr_token=secrets.token_urlsafe(18),
            request_hash=request_hash,
            created_at=now,
            expires_at=now + timedelta(seconds=self.config.dynamic_qr_ttl_seconds),
        )
        try:
            async with self._tx() as session:
                session.add(payment)
        except IntegrityError:
            existing = await self._existing_payment(merchant_id, order_id)
            assert existing is not None
            return await self._merchant_result(self._replay(existing, request_hash))
        return await self._merchant_result(payment)

    async def qr_token_of(self, payment_id: uuid.UUID) -> str | None:
        async with self.db.sessions() as session:
            return await session.scalar(select(Payment.qr_token).where(Payment.id == payment_id))

    async def _resolve_qr(self, token: str) -> tuple[Store | None, Payment | None]:
        async with self.db.sessions() as session:
            store = await session.scalar(select(Store).where(Store.qr_token == token))
            if store is not None:
                return store, None
            payment = await session.scalar(select(Payment).where(Payment.qr_token == token))
            if payment is None:
                raise ProblemError("payment-not-found", "That QR code is not a payment code.")
            store = await session.get(Store, payment.store_id) if payment.store_id else None
            return store, payment

    async def scan_qr(self, token: str) -> QrView:
        store, payment = await self._resolve_qr(token)
        merchant_id = payment.merchant_id if payment else store.merchant_id  # type: ignore[union-attr]
        merchant = await self._merchant(merchant_id)
        if payment is not None and self._status(payment) != "awaiting-customer":
            raise ProblemError("payment-not-payable", "Ask the cashier for a new code.")
        return QrView(
            merchant_name=merchant.name,
            store_name=store.name if store else None,
            amount=Money(payment.amount_minor, payment.currency) if payment else None,
            order_id=payment.order_id if payment else None,
            expires_at=payment.expires_at if payment else None,
        )

    async def pay_qr(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        token: str,
        request_id: str,
        pin: str | None,
        money: Money | None = None,
        coupon: uuid.UUID | Literal["auto", "none"] = "auto",
    ) -> PaymentResult:
        """The customer pays a store's static QR (own amount) or an order's dynamic QR."""
        store, order = await self._resolve_qr(token)
        if order is not None:
            if order.status == "succeeded" and order.user_id == user_id:
                return PaymentResult(
                    await self.view(order), await self._wallet_in(user_id, order.currency)
                )
            if self._status(order) != "awaiting-customer":
                raise ProblemError("payment-not-payable", "Ask the cashier for a new code.")
            amount = Money(order.amount_minor, order.currency)
            if money is not None and money != amount:
                raise ProblemError("currency-mismatch", "Pay the amount shown on the code.")
            await self._require_approved(order.merchant_id)
            return await self._pay_order(user_id, session_id, order, pin, coupon)
        assert store is not None
        if money is None:
            raise ProblemError("invalid-amount", "Enter the amount to pay.")
        order_id = f"qr-{user_id}-{request_id}"[:64]
        request_hash = _digest("static", money.amount_minor, money.currency, store.id)
        existing = await self._existing_payment(store.merchant_id, order_id)
        if existing is not None:
            self._replay(existing, request_hash)
            return PaymentResult(
                await self.view(existing), await self._wallet_in(user_id, money.currency)
            )
        await self._require_approved(store.merchant_id)
        _check_amount(money, self.config)
        if self._needs_pin(money) or pin:
            await self.check_pin(user_id, pin or "")
        now = self.clock.now()
        await self.ledger.ensure(
            self._payment_keys(user_id, store.merchant_id, money.currency), now
        )
        payment = Payment(
            id=new_id(),
            merchant_id=store.merchant_id,
            store_id=store.id,
            order_id=order_id,
            user_id=user_id,
            session_id=session_id,
            currency=money.currency,
            amount_minor=money.amount_minor,
            discount_minor=0,
            fee_minor=0,
            refunded_minor=0,
            status="paying",
            request_hash=request_hash,
            created_at=now,
        )
        try:
            async with self._tx() as session:
                session.add(payment)
                await session.flush()
                after = await self._execute(session, payment, coupon)
        except IntegrityError:
            existing = await self._existing_payment(store.merchant_id, order_id)
            assert existing is not None
            return PaymentResult(
                await self.view(existing), await self._wallet_in(user_id, money.currency)
            )
        key = AccountKey("user", str(user_id), money.currency)
        return PaymentResult(await self.view(payment), Money(after[key], money.currency))

    async def _pay_order(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        order: Payment,
        pin: str | None,
        coupon: uuid.UUID | Literal["auto", "none"],
    ) -> PaymentResult:
        amount = Money(order.amount_minor, order.currency)
        if self._needs_pin(amount) or pin:
            await self.check_pin(user_id, pin or "")
        now = self.clock.now()
        await self.ledger.ensure(
            self._payment_keys(user_id, order.merchant_id, order.currency), now
        )
        async with self._tx() as session:
            claimed = await session.execute(
                update(Payment)
                .where(
                    Payment.id == order.id,
                    Payment.status == "awaiting-customer",
                    Payment.expires_at > now,
                )
                .values(status="paying", user_id=user_id, session_id=session_id)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                raise ProblemError("payment-not-payable", "Ask the cashier for a new code.")
            row = await session.get(Payment, order.id)
            assert row is not None
            await session.refresh(row)
            after = await self._execute(session, row, coupon)
        key = AccountKey("user", str(user_id), order.currency)
        return PaymentResult(await self.view(row), Money(after[key], order.currency))

    # -- flash sales: pay for a reserved unit -------------------------------------------------

    async def pay_reservation(
        self, user_id: uuid.UUID, session_id: uuid.UUID, reservation_id: uuid.UUID, pin: str | None
    ) -> PaymentResult:
        """Pay for a flash-sale unit reserved in the coupons context, in one transaction."""
        order_id = f"flash-{reservation_id}"
        offer = await coupons.reservation_offer(self.db, reservation_id, user_id)
        merchant_id = uuid.UUID(offer.merchant_id)
        existing = await self._existing_payment(merchant_id, order_id)
        if existing is not None and existing.status == "succeeded":
            return PaymentResult(
                await self.view(existing), await self._wallet_in(user_id, offer.price.currency)
            )
        if self._needs_pin(offer.price) or pin:
            await self.check_pin(user_id, pin or "")
        now = self.clock.now()
        await self.ledger.ensure(
            self._payment_keys(user_id, merchant_id, offer.price.currency), now
        )
        payment = Payment(
            id=new_id(),
            merchant_id=merchant_id,
            store_id=uuid.UUID(offer.store_id) if offer.store_id else None,
            order_id=order_id,
            user_id=user_id,
            session_id=session_id,
            currency=offer.price.currency,
            amount_minor=offer.price.amount_minor,
            discount_minor=0,
            fee_minor=0,
            refunded_minor=0,
            status="paying",
            request_hash=_digest("flash", reservation_id),
            created_at=now,
        )
        try:
            async with self._tx() as session:
                await coupons.take_reservation(
                    session,
                    reservation_id=reservation_id,
                    user_id=user_id,
                    payment_ref=str(payment.id),
                    now=now,
                )
                session.add(payment)
                await session.flush()
                after = await self._execute(session, payment, "none")
        except (ProblemError, IntegrityError):
            existing = await self._existing_payment(merchant_id, order_id)
            if existing is not None and existing.status == "succeeded":
                return PaymentResult(
                    await self.view(existing), await self._wallet_in(user_id, offer.price.currency)
                )
            raise
        key = AccountKey("user", str(user_id), offer.price.currency)
        return PaymentResult(await self.view(payment), Money(after[key], offer.price.currency))

    # -- order query and refunds --------------------------------------------------------------

    async def order(self, cashier: uuid.UUID, merchant_id: uuid.UUID, order_id: str) -> PaymentView:
        await self._require_role(cashier, merchant_id)
        payment = await self._existing_payment(merchant_id, order_id)
        if payment is None:
            raise ProblemError("payment-not-found", "Check the order id.")
        return await self.view(payment)

    async def customer_payment(self, user_id: uuid.UUID, payment_id: uuid.UUID) -> PaymentView:
        async with self.db.sessions() as session:
            payment = await session.get(Payment, payment_id)
        if payment is None or payment.user_id != user_id:
            raise ProblemError("payment-not-found", "Check the payment id.")
        return await self.view(payment)

    async def history(self, user_id: uuid.UUID, limit: int = 20) -> list[PaymentView]:
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(Payment)
                    .where(Payment.user_id == user_id, Payment.status != "paying")
                    .order_by(Payment.created_at.desc())
                    .limit(limit)
                )
            ).all()
        return [await self.view(row) for row in rows]

    async def refund(
        self,
        cashier: uuid.UUID,
        merchant_id: uuid.UUID,
        order_id: str,
        refund_id: str,
        money: Money,
    ) -> RefundResult:
        """Give back part or all of what the customer paid; idempotent per `refund_id`."""
        await self._require_role(cashier, merchant_id)
        payment = await self._existing_payment(merchant_id, order_id)
        if payment is None:
            raise ProblemError("payment-not-found", "Check the order id.")
        if money.currency != payment.currency:
            raise ProblemError("currency-mismatch", "Refund in the currency of the payment.")
        done = await self._existing_refund(payment.id, refund_id)
        if done is not None:
            return await self._refund_result(done, payment.id, money)
        if money.amount_minor <= 0:
            raise ProblemError("invalid-amount", "The amount must be more than zero.")
        now = self.clock.now()
        if payment.paid_at is None or payment.status not in ("succeeded", "refunded"):
            raise ProblemError("payment-not-payable", "Only a paid order can be refunded.")
        if now - payment.paid_at > timedelta(days=self.config.refund_window_days):
            raise ProblemError("refund-window-closed", "Refund the customer another way.")
        paid = payment.amount_minor - payment.discount_minor
        try:
            async with self._tx() as session:
                refunded = await session.scalar(
                    update(Payment)
                    .where(
                        Payment.id == payment.id,
                        Payment.refunded_minor + money.amount_minor <= paid,
                    )
                    .values(refunded_minor=Payment.refunded_minor + money.amount_minor)
                    .returning(Payment.refunded_minor)
                )
                if refunded is None:
                    raise ProblemError(
                        "refund-too-large",
                        "At most %(left)s can still be refunded.",
                        params={"left": "…"},
                    )
                before = int(refunded) - money.amount_minor
                await self._refund_ledger(session, payment, before, int(refunded), now)
                if int(refunded) == paid:
                    await session.execute(
                        update(Payment).where(Payment.id == payment.id).values(status="refunded")
                    )
                    if payment.coupon_id is not None:
                        await coupons.return_coupon(session, coupon_id=payment.coupon_id, now=now)
                session.add(
                    Refund(
                        id=new_id(),
                        payment_id=payment.id,
                        refund_id=refund_id,
                        amount_minor=money.amount_minor,
                        created_at=now,
                    )
                )
                assert payment.user_id is not None
                # Who gave money back, in the cashier's own audit trail, in the same commit.
                record_audit(
                    session,
                    account_id=cashier,
                    action=audit.REFUND,
                    occurred_at=now,
                    detail={
                        "merchant_id": str(merchant_id),
                        "order_id": order_id,
                        "refund_id": refund_id,
                        "amount_minor": money.amount_minor,
                        "currency": money.currency,
                    },
                )
                record_event(
                    session,
                    events.PaymentRefunded(
                        payment_id=payment.id,
                        merchant_id=merchant_id,
                        order_id=order_id,
                        refund_id=refund_id,
                        user_id=payment.user_id,
                        currency=payment.currency,
                        amount_minor=money.amount_minor,
                    ),
                    now,
                )
        except (ProblemError, IntegrityError) as error:
            done = await self._existing_refund(payment.id, refund_id)
            if done is not None:
                return await self._refund_result(done, payment.id, money)
            if isinstance(error, ProblemError) and error.slug == "refund-too-large":
                fresh = await self._existing_payment(merchant_id, order_id)
                assert fresh is not None
                left = Money(paid - fresh.refunded_minor, payment.currency)
                raise ProblemError(
                    "refund-too-large",
                    "At most %(left)s can still be refunded.",
                    params={"left": str(left)},
                ) from None
            raise
        return await self._refund_result(
            Refund(refund_id=refund_id, amount_minor=money.amount_minor), payment.id, money
        )

    async def _refund_ledger(
        self, session: AsyncSession, payment: Payment, before: int, after: int, now: datetime
    ) -> None:
        """Reverse shares so that a full refund puts every account back exactly."""
        assert payment.user_id is not None
        paid = payment.amount_minor - payment.discount_minor
        fee = _proportional(payment.fee_minor, after, paid) - _proportional(
            payment.fee_minor, before, paid
        )
        coupon = _proportional(payment.discount_minor, after, paid) - _proportional(
            payment.discount_minor, before, paid
        )
        amount = after - before
        user, merchant, fee_key = self._payment_keys(
            payment.user_id, payment.merchant_id, payment.currency
        )
        legs = [Leg(user, amount), Leg(fee_key, -fee), Leg(merchant, -(amount + coupon - fee))]
        if payment.coupon_issuer and coupon:
            funding = AccountKey("coupon", payment.coupon_issuer, payment.currency)
            await self.ledger.ensure_in(session, [funding], now)
            legs.append(Leg(funding, coupon))
        await self._post(session, "refund", str(payment.id), legs, now)

    async def _existing_refund(self, payment_id: uuid.UUID, refund_id: str) -> Refund | None:
        async with self.db.sessions() as session:
            return await session.scalar(
                select(Refund).where(Refund.payment_id == payment_id, Refund.refund_id == refund_id)
            )

    async def _refund_result(
        self, refund: Refund, payment_id: uuid.UUID, asked: Money
    ) -> RefundResult:
        if refund.amount_minor != asked.amount_minor:
            raise ProblemError("idempotency-conflict", "Use a new refund id for a new refund.")
        async with self.db.sessions() as session:
            payment = await session.get(Payment, payment_id)
        assert payment is not None
        return RefundResult(
            refund.refund_id,
            await self.view(payment),
            Money(refund.amount_minor, payment.currency),
            await self._merchant_balance(payment.merchant_id, payment.currency),
        )

    # -- webhooks -----------------------------------------------------------------------------

    async def queue_webhooks(self) -> int:
        """Turn new payment events into deliveries for merchants with a webhook URL."""

        async def handle(session: AsyncSession, event: StoredEvent) -> None:
            if event.topic not in ("payment.succeeded", "payment.refunded"):
                return
            merchant_id = uuid.UUID(event.payload["merchant_id"])
            merchant = await session.get(Merchant, merchant_id)
            if merchant is None or not merchant.webhook_url:
                return
            exists = await session.scalar(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.event_id == event.id,
                    WebhookDelivery.merchant_id == merchant_id,
                )
            )
            if exists is None:
                session.add(
                    WebhookDelivery(
                        id=new_id(),
                        event_id=event.id,
                        merchant_id=merchant_id,
                        body={
                            "id": str(event.id),
                            "type": event.topic,
                            "data": _merchant_view(event.payload),
                        },
                        attempts=0,
                        status="pending",
                        next_attempt_at=event.occurred_at,
                    )
                )

        async with self._tx() as session:
            return await consume(
                session,
                "pay.webhooks",
                handle,
                topics=("payment.succeeded", "payment.refunded"),
            )

    async def deliver_webhooks(self) -> int:
        """POST due notifications, signed with HMAC-SHA256 over "timestamp.body"; retry later."""
        now = self.clock.now()
        async with self.db.sessions() as session:
            due = (
                await session.scalars(
                    select(WebhookDelivery)
                    .where(
                        WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now
                    )
                    .limit(100)
                )
            ).all()
        delivered = 0
        for delivery in due:
            async with self._tx() as session:
                claimed = await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == delivery.id,
                        WebhookDelivery.attempts == delivery.attempts,
                        WebhookDelivery.status == "pending",
                    )
                    .values(
                        attempts=delivery.attempts + 1,
                        next_attempt_at=now + timedelta(seconds=30 * 2**delivery.attempts),
                    )
                )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                continue
            merchant = await self._merchant(delivery.merchant_id)
            ok = await self._post_webhook(merchant, delivery.body, now)
            status = "delivered" if ok else "pending"
            if not ok and delivery.attempts + 1 >= self.config.webhook_attempts:
                status = "failed"
            async with self._tx() as session:
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery.id)
                    .values(status=status)
                )
            delivered += ok
        return delivered

    async def _check_webhook_url(self, url: str | None) -> None:
        if url is None:
            return
        try:
            await check_destination(url, allow_private=self.config.webhooks_to_private_networks)
        except RefusedDestination as refused:
            if refused.reason == "private":
                raise ProblemError(
                    "webhook-url-refused", "The URL points into a private network."
                ) from None
            if refused.reason == "unresolvable":
                raise ProblemError(
                    "webhook-url-refused", "The host name does not resolve."
                ) from None
            raise ProblemError(
                "webhook-url-refused", "Use an http or https URL with a host name."
            ) from None

    async def _post_webhook(self, merchant: Merchant, body: dict[str, Any], now: datetime) -> bool:
        if not merchant.webhook_url:
            return False
        try:  # again at each delivery: the host's DNS answer may have changed since it was saved
            await check_destination(
                merchant.webhook_url, allow_private=self.config.webhooks_to_private_networks
            )
        except RefusedDestination:
            return False
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(now.timestamp()))
        signature = sign_webhook(merchant.webhook_secret, timestamp, payload)
        headers = {
            "Content-Type": "application/json",
            "X-OMO-Timestamp": timestamp,
            "X-OMO-Signature": f"sha256={signature}",
        }
        client = self.http or httpx.AsyncClient(timeout=10)
        try:
            response = await client.post(merchant.webhook_url, content=payload, headers=headers)
            return 200 <= response.status_code < 300
        except httpx.HTTPError:
            return False
        finally:
            if self.http is None:
                await client.aclose()

    async def run_background_once(self) -> None:
        await self.queue_webhooks()
        await self.deliver_webhooks()
        await self.reconcile_bank()

    async def organisation_merchant(
        self, organisation_id: str
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(merchant id, owner's user id) of an organisation's merchant account, if any: for
        the organisation's mini programs, whose servers create orders on its behalf."""
        async with self.db.sessions() as session:
            row = await session.execute(
                select(Merchant.id, Merchant.owner_user_id).where(
                    Merchant.organisation_id == organisation_id
                )
            )
            found = row.first()
        return (found.id, found.owner_user_id) if found else None


MAX_BASKET_LINES = 200


def _check_basket(items: Sequence[tuple[str, int]] | None, money: Money) -> list[list[Any]] | None:
    """The basket as stored: its lines must be positive and add up to the amount charged."""
    if items is None:
        return None
    lines = [(str(product), int(amount)) for product, amount in items]
    if (
        not lines
        or len(lines) > MAX_BASKET_LINES
        or any(not 0 < len(product) <= 64 or amount <= 0 for product, amount in lines)
        or sum(amount for _product, amount in lines) != money.amount_minor
    ):
        raise ProblemError(
            "basket-mismatch",
            "The basket's lines must be positive and add up to the amount charged.",
        )
    return [[product, amount] for product, amount in lines]


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """What a merchant recomputes to check a notification: hex HMAC-SHA256 of "ts.body"."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class LocatedStore:
    store_id: uuid.UUID
    merchant_id: uuid.UUID
    merchant_name: str
    organisation_id: str
    name: str
    latitude: float
    longitude: float


async def located_stores(db: Database) -> list[LocatedStore]:
    """Every store that has a position, with its merchant (read by Places nearby)."""
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(Store, Merchant.name, Merchant.organisation_id)
                .join(Merchant, Merchant.id == Store.merchant_id)
                .where(Store.latitude.is_not(None), Store.longitude.is_not(None))
            )
        ).all()
    return [
        LocatedStore(
            store.id,
            store.merchant_id,
            merchant_name,
            organisation_id,
            store.name,
            store.latitude or 0.0,
            store.longitude or 0.0,
        )
        for store, merchant_name, organisation_id in rows
    ]


async def merchants_of_organisations(
    db: Database, organisation_ids: Collection[str]
) -> dict[str, list[uuid.UUID]]:
    """The merchant ids of each brand organisation (read by Places nearby for the offers of
    an official account's place)."""
    if not organisation_ids:
        return {}
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(Merchant.organisation_id, Merchant.id).where(
                    Merchant.organisation_id.in_(list(organisation_ids))
                )
            )
        ).all()
    found: dict[str, list[uuid.UUID]] = {}
    for organisation_id, merchant_id in rows:
        found.setdefault(organisation_id, []).append(merchant_id)
    return found
