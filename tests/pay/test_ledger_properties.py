"""Property-based and concurrency tests of the ledger, on SQLite and PostgreSQL.

A random sequence of top-ups, payments (with coupons), refunds, withdrawals and bank failures
never creates or destroys money, never leaves a person or merchant below zero, and every
idempotent retry returns the first result.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import select

from omo.core.clock import ManualClock
from omo.core.config import Settings
from omo.core.db import Database
from omo.core.errors import ProblemError
from omo.core.money import Money
from omo.coupons.service import CouponService
from omo.pay.bank import SandboxBank
from omo.pay.ledger import OWNED
from omo.pay.models import Account
from omo.pay.service import PaymentResult, PayService

T = TypeVar("T")
CURRENCIES = ("EUR", "JPY")
USERS = 3
EXPECTED_REFUSALS = {
    "insufficient-funds",
    "merchant-insufficient-funds",
    "refund-too-large",
    "bank-declined",
}


class LedgerMachine(RuleBasedStateMachine):
    database_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.db = Database(self.database_url)
        self.bank = SandboxBank()
        self.pay = PayService(self.db, self.clock, bank=self.bank)
        self.coupons = CouponService(self.db, self.clock)
        self.users = [uuid.uuid4() for _ in range(USERS)]
        self.sessions = {user: uuid.uuid4() for user in self.users}
        self.owner = uuid.uuid4()
        self.merchant = self.run(
            self.pay.create_merchant(self.owner, f"org-{uuid.uuid4().hex}", "Shop")
        ).id
        self.campaigns = {
            currency: self.run(
                self.coupons.create_campaign(
                    issuer=str(self.merchant),
                    title="2 off over 10",
                    kind="threshold",
                    currency=currency,
                    starts_at=self.clock.now() - timedelta(days=1),
                    ends_at=self.clock.now() + timedelta(days=30),
                    total_stock=1000,
                    per_user_limit=1000,
                    tiers=[
                        [
                            Money.of("10", currency).amount_minor,
                            Money.of("2", currency).amount_minor,
                        ]
                    ],
                )
            ).id
            for currency in CURRENCIES
        }
        self.payments: list[tuple[str, Money]] = []
        self.results: dict[str, PaymentResult] = {}
        self.counter = 0

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()

    def next_id(self) -> str:
        self.counter += 1
        return f"id-{self.counter}"

    def attempt(self, work: Coroutine[Any, Any, T]) -> T | None:
        try:
            return self.run(work)
        except ProblemError as refusal:
            refused = refusal.slug
        assert refused in EXPECTED_REFUSALS, refused
        return None

    @rule(
        user=st.integers(0, USERS - 1),
        currency=st.sampled_from(CURRENCIES),
        amount=st.integers(1, 50_000),
        behaviour=st.sampled_from(["succeed", "succeed", "decline", "timeout", "late"]),
    )
    def top_up(self, user: int, currency: str, amount: int, behaviour: str) -> None:
        self.bank.then(behaviour)  # type: ignore[arg-type]
        request = self.next_id()
        money = Money(amount, currency)
        first = self.run(self.pay.top_up(self.users[user], request, "IBAN-1", money))
        again = self.run(self.pay.top_up(self.users[user], request, "IBAN-1", money))
        assert (again.id, again.amount) == (first.id, first.amount)

    @rule(
        user=st.integers(0, USERS - 1),
        currency=st.sampled_from(CURRENCIES),
        amount=st.integers(1, 20_000),
        behaviour=st.sampled_from(["succeed", "decline", "timeout", "late"]),
    )
    def withdraw(self, user: int, currency: str, amount: int, behaviour: str) -> None:
        self.bank.then(behaviour)  # type: ignore[arg-type]
        self.attempt(
            self.pay.withdraw(self.users[user], self.next_id(), "IBAN-1", Money(amount, currency))
        )

    @rule()
    def reconcile(self) -> None:
        self.run(self.pay.reconcile_bank())

    @rule(user=st.integers(0, USERS - 1), currency=st.sampled_from(CURRENCIES))
    def claim_coupon(self, user: int, currency: str) -> None:
        self.run(self.coupons.claim(self.users[user], campaign_id=self.campaigns[currency]))

    @rule(
        user=st.integers(0, USERS - 1),
        currency=st.sampled_from(CURRENCIES),
        amount=st.integers(1, 30_000),
    )
    def pay(self, user: int, currency: str, amount: int) -> None:
        person = self.users[user]
        code = self.run(self.pay.issue_code(person, self.sessions[person]))
        order = self.next_id()
        money = Money(amount, currency)
        result = self.attempt(
            self.pay.charge_code(self.owner, self.merchant, code.code, money, order)
        )
        if result is None:
            return
        retried = self.run(self.pay.charge_code(self.owner, self.merchant, code.code, money, order))
        assert retried.payment == result.payment
        if result.payment.status == "succeeded":
            self.payments.append((order, result.payment.paid))

    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        if not self.payments:
            return
        order, paid = data.draw(st.sampled_from(self.payments))
        amount = data.draw(st.integers(1, max(1, paid.amount_minor)))
        refund_id = self.next_id()
        money = Money(amount, paid.currency)
        first = self.attempt(self.pay.refund(self.owner, self.merchant, order, refund_id, money))
        if first is not None:
            again = self.run(self.pay.refund(self.owner, self.merchant, order, refund_id, money))
            assert (again.refund_id, again.amount) == (first.refund_id, first.amount)

    @invariant()
    def money_is_neither_created_nor_destroyed(self) -> None:
        totals = self.run(self.pay.ledger.totals())
        assert all(total == 0 for total in totals.values()), totals
        assert self.run(self.pay.ledger.entries_balance())

    @invariant()
    def no_person_or_merchant_below_zero(self) -> None:
        async def lowest() -> int:
            async with self.db.sessions() as session:
                rows = await session.scalars(
                    select(Account.balance_minor).where(Account.kind.in_(OWNED))
                )
                return min(rows.all(), default=0)

        assert self.run(lowest()) >= 0


def test_the_ledger_stays_balanced_under_random_operations(settings_: Settings) -> None:
    LedgerMachine.database_url = settings_.resolved_database_url
    run = LedgerMachine.TestCase
    run.settings = settings(
        max_examples=8,
        phases=[Phase.generate],
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    # Its own thread and event loop: another test on this worker may keep one running here.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run().runTest).result()


@pytest.fixture
def settings_(settings: Settings) -> Settings:
    return settings


async def test_concurrent_payments_and_refunds_lose_no_update(app: FastAPI) -> None:
    pay: PayService = app.state.pay
    pay.session_active = None
    owner = uuid.uuid4()
    merchant = (await pay.create_merchant(owner, "org-race", "Race")).id
    people = [uuid.uuid4() for _ in range(4)]
    for person in people:
        await pay.top_up(person, "seed", "IBAN", Money.of("100.00", "EUR"))

    async def buy(index: int) -> Money | None:
        person = people[index % len(people)]
        code = await pay.issue_code(person, uuid.uuid4())
        try:
            result = await pay.charge_code(
                owner, merchant, code.code, Money.of("3.00", "EUR"), f"o-{index}"
            )
        except ProblemError as refusal:
            refused = refusal.slug
        else:
            return result.payment.paid
        assert refused == "insufficient-funds"
        return None

    paid = [m for m in await asyncio.gather(*(buy(i) for i in range(160))) if m is not None]
    # 4 people x 100.00 can afford 33 payments of 3.00 each: exactly 132 succeed.
    assert len(paid) == 132

    async def give_back(index: int) -> None:
        await pay.refund(owner, merchant, f"o-{index}", "r", Money.of("1.00", "EUR"))

    succeeded = [
        i for i in range(160) if (await pay._existing_payment(merchant, f"o-{i}")) is not None
    ]
    await asyncio.gather(*(give_back(i) for i in succeeded[:40]))
    wallets = [await pay.wallet(person) for person in people]
    total_people = sum(w[0].amount_minor for w in wallets)
    merchant_balance = (await pay.ledger.balances("merchant", str(merchant)))[0].amount_minor
    fee_total = (await pay.ledger.balances("fee", "platform"))[0].amount_minor
    assert total_people == 40_000 - 132 * 300 + 40 * 100
    assert total_people + merchant_balance + fee_total == 40_000
    assert await pay.ledger.totals() == {"EUR": 0}
    assert await pay.ledger.entries_balance()
