"""The double-entry ledger: accounts, balanced transfers, balances now and in the past.

A transfer's legs sum to zero per currency, so money is never created nor destroyed; the
bank clearing, fee, coupon funding and exchange accounts are the platform's side of every
movement. A user's or merchant's balance never goes below zero: each leg is one conditional
UPDATE on a row that was locked first (PostgreSQL: SELECT ... FOR UPDATE in account-id order,
so two transfers over the same accounts cannot deadlock; SQLite: one writer at a time).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from omo.core.db import Database
from omo.core.ids import new_id
from omo.core.money import Money
from omo.pay.models import Account, Entry, Transfer

AccountKind = Literal["user", "merchant", "fee", "bank", "coupon", "fx"]
OWNED = frozenset({"user", "merchant"})
PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class AccountKey:
    kind: AccountKind
    owner: str
    currency: str


class Insufficient(Exception):  # noqa: N818 - reads as the domain term
    """A leg would take an owned account below zero; the transaction must roll back."""

    def __init__(self, key: AccountKey) -> None:
        super().__init__(f"{key.kind} account {key.owner} lacks {key.currency}")
        self.key = key


class UnbalancedError(ValueError):
    """A transfer whose legs do not sum to zero in some currency: a programming error."""


@dataclass(frozen=True, slots=True)
class Leg:
    account: AccountKey
    amount_minor: int


class Ledger:
    """Account ids are immutable once created, so they are cached per process."""

    def __init__(
        self, db: Database, transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]]
    ) -> None:
        self.db = db
        self.transaction = transaction
        self._ids: dict[AccountKey, uuid.UUID] = {}

    async def ensure(
        self, keys: Iterable[AccountKey], now: datetime
    ) -> dict[AccountKey, uuid.UUID]:
        """Create missing accounts in their own short transaction (idempotent under races)."""
        wanted = set(keys)
        if any(key not in self._ids for key in wanted):
            async with self.transaction() as session:
                await self.ensure_in(session, wanted, now)
                created = dict(session.info["pay_accounts"])
            self._ids.update(created)
        return {key: self._ids[key] for key in wanted}

    async def ensure_in(
        self, session: AsyncSession, keys: Iterable[AccountKey], now: datetime
    ) -> None:
        """Create missing accounts inside the caller's transaction (known to it only, until
        it commits: a rolled-back account must not stay in the process-wide cache)."""
        local: dict[AccountKey, uuid.UUID] = session.info.setdefault("pay_accounts", {})
        missing = [key for key in set(keys) if key not in self._ids and key not in local]
        if not missing:
            return
        insert_ = sqlite_insert if self.db.is_sqlite else pg_insert
        await session.execute(
            insert_(Account)
            .values(
                [
                    {
                        "id": new_id(),
                        "kind": key.kind,
                        "owner": key.owner,
                        "currency": key.currency,
                        "balance_minor": 0,
                        "may_go_negative": key.kind not in OWNED,
                        "created_at": now,
                    }
                    for key in missing
                ]
            )
            .on_conflict_do_nothing()
        )
        for key in missing:
            found = await session.scalar(
                select(Account.id).where(
                    Account.kind == key.kind,
                    Account.owner == key.owner,
                    Account.currency == key.currency,
                )
            )
            assert found is not None
            local[key] = found

    async def post(
        self,
        session: AsyncSession,
        kind: str,
        reference: str,
        legs: Sequence[Leg],
        now: datetime,
        rate: str | None = None,
    ) -> dict[AccountKey, int]:
        """Apply a balanced transfer inside the caller's transaction; returns balances after.

        Accounts are created on first use; `ensure` them beforehand to keep the write short.
        """
        merged: dict[AccountKey, int] = defaultdict(int)
        per_currency: dict[str, int] = defaultdict(int)
        for leg in legs:
            merged[leg.account] += leg.amount_minor
            per_currency[leg.account.currency] += leg.amount_minor
        if any(per_currency.values()):
            raise UnbalancedError(f"{kind} {reference}: {dict(per_currency)}")
        # Accounts not seen by this process yet (e.g. a transfer settled after a restart).
        await self.ensure_in(session, merged, now)
        local: dict[AccountKey, uuid.UUID] = session.info.get("pay_accounts", {})
        moving = sorted(
            (
                (self._ids.get(key) or local[key], key, amount)
                for key, amount in merged.items()
                if amount
            ),
            key=lambda item: item[0],
        )
        if not moving:
            return {}
        ids = [account_id for account_id, _, _ in moving]
        if not self.db.is_sqlite:
            await session.execute(
                select(Account.id).where(Account.id.in_(ids)).order_by(Account.id).with_for_update()
            )
        after: dict[AccountKey, int] = {}
        for account_id, key, amount in moving:
            balance = await session.scalar(
                update(Account)
                .where(
                    Account.id == account_id,
                    or_(Account.may_go_negative, Account.balance_minor + amount >= 0),
                )
                .values(balance_minor=Account.balance_minor + amount)
                .returning(Account.balance_minor)
            )
            if balance is None:
                raise Insufficient(key)
            after[key] = int(balance)
        transfer_id = new_id()
        session.add(
            Transfer(id=transfer_id, kind=kind, reference=reference, rate=rate, created_at=now)
        )
        await session.flush()
        await session.execute(
            insert(Entry),
            [
                {
                    "transfer_id": transfer_id,
                    "account_id": account_id,
                    "amount_minor": amount,
                    "balance_after_minor": after[key],
                    "created_at": now,
                }
                for account_id, key, amount in moving
            ],
        )
        return after

    async def balances(self, owner_kind: AccountKind, owner: str) -> list[Money]:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Account.currency, Account.balance_minor)
                .where(Account.kind == owner_kind, Account.owner == owner)
                .order_by(Account.currency)
            )
            return [Money(int(amount), currency) for currency, amount in rows]

    async def balance_at(self, key: AccountKey, moment: datetime) -> Money:
        """The balance as it stood at `moment`, read from the immutable entries."""
        async with self.db.sessions() as session:
            account_id = await session.scalar(
                select(Account.id).where(
                    Account.kind == key.kind,
                    Account.owner == key.owner,
                    Account.currency == key.currency,
                )
            )
            if account_id is None:
                return Money.zero(key.currency)
            balance = await session.scalar(
                select(Entry.balance_after_minor)
                .where(Entry.account_id == account_id, Entry.created_at <= moment)
                .order_by(Entry.created_at.desc(), Entry.id.desc())
                .limit(1)
            )
            return Money(int(balance or 0), key.currency)

    async def totals(self) -> dict[str, int]:
        """Sum of every account per currency: always zero on a sound ledger."""
        async with self.db.sessions() as session:
            rows = await session.execute(select(Account.currency, Account.balance_minor))
            totals: dict[str, int] = defaultdict(int)
            for currency, amount in rows:
                totals[currency] += int(amount)
            return dict(totals)

    async def entries_balance(self) -> bool:
        """Every transfer's entries sum to zero per currency and replay to the balances."""
        async with self.db.sessions() as session:
            entries = (await session.execute(select(Entry.account_id, Entry.amount_minor))).all()
            accounts = (await session.execute(select(Account.id, Account.balance_minor))).all()
        replay: dict[uuid.UUID, int] = defaultdict(int)
        for account_id, amount in entries:
            replay[account_id] += int(amount)
        return all(replay[account_id] == int(balance) for account_id, balance in accounts)
