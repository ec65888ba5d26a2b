"""The double-entry ledger: accounts, balanced transfers, balances now and in the past.

A transfer's legs sum to zero per currency, so money is never created nor destroyed; the
bank clearing, fee, coupon funding and exchange accounts are the platform's side of every
movement. A user's or merchant's balance never goes below zero: all legs are one conditional
UPDATE on rows that are locked first (PostgreSQL: FOR UPDATE in account-id order, so two
transfers over the same accounts cannot deadlock; SQLite: one writer at a time).
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import BigInteger, Table, Uuid, bindparam, case, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from omo.core.db import Database
from omo.core.driver import DriverStatement
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


# The hot statements are built once: building a SQLAlchemy statement costs several times
# more than SQLite takes to run it (docs/BENCHMARKS.md, payments).
_ACCOUNTS = cast(Table, Account.__table__)
_TRANSFERS = cast(Table, Transfer.__table__)
_ENTRIES = cast(Table, Entry.__table__)
_INSERT_TRANSFER = DriverStatement(
    insert(cast(Table, Transfer.__table__)),
    column_keys=["id", "kind", "reference", "rate", "created_at"],
)
_INSERT_ENTRY = DriverStatement(
    insert(cast(Table, Entry.__table__)),
    column_keys=["transfer_id", "account_id", "amount_minor", "balance_after_minor", "created_at"],
)


@functools.cache
def _move(legs: int, sqlite: bool) -> DriverStatement:
    return DriverStatement(_move_statement(legs, sqlite))


def _move_statement(legs: int, sqlite: bool) -> Any:
    """Every leg of a transfer in one statement: `balance += d` on each account whose result
    stays allowed (`may_go_negative` or >= 0), returning the new balances; an account left
    out of RETURNING lacks the money, and the caller's transaction must roll back.

    PostgreSQL first locks the rows in id order (FOR UPDATE in a CTE), so two transfers over
    the same accounts cannot deadlock; SQLite has one writer at a time."""
    table = _ACCOUNTS
    ids = [bindparam(f"a{index}", type_=Uuid()) for index in range(legs)]
    delta = case(
        *(
            (table.c.id == ids[index], bindparam(f"d{index}", type_=BigInteger()))
            for index in range(legs)
        ),
        else_=0,
    )
    allowed = or_(table.c.may_go_negative, table.c.balance_minor + delta >= 0)
    statement = update(table).values(balance_minor=table.c.balance_minor + delta)
    if sqlite:
        statement = statement.where(table.c.id.in_(ids), allowed)
    else:
        locked = (
            select(table.c.id.label("locked_id"))
            .where(table.c.id.in_(ids))
            .order_by(table.c.id)
            .with_for_update()
            .cte("locked")
        )
        statement = statement.where(table.c.id == locked.c.locked_id, allowed)
    return statement.returning(table.c.id, table.c.balance_minor)


@functools.cache
def _transfer_pg(legs: int) -> DriverStatement:
    """PostgreSQL: the whole transfer in one statement (one round trip, not three): the
    transfer row, `_move`'s locked conditional UPDATE, and the entries of the accounts it
    moved, as data-modifying CTEs; returns the moved accounts' new balances like `_move`. An
    account missing from them lacks the money: the caller raises and its transaction rolls
    back, with the transfer and the other entries. (SQLite has no data-modifying CTEs.)"""
    ids = [bindparam(f"a{index}", type_=Uuid()) for index in range(legs)]
    amounts = [bindparam(f"d{index}", type_=BigInteger()) for index in range(legs)]
    transfer = (
        insert(_TRANSFERS)
        .values(
            id=bindparam("transfer_id", type_=Uuid()),
            kind=bindparam("kind"),
            reference=bindparam("reference"),
            rate=bindparam("rate"),
            created_at=bindparam("now"),
        )
        .cte("transfer")
    )
    moved = _move_statement(legs, sqlite=False).cte("moved")
    moved_amount = case(*((moved.c.id == ids[i], amounts[i]) for i in range(legs)), else_=0)
    entries = (
        insert(_ENTRIES)
        .from_select(
            ["transfer_id", "account_id", "amount_minor", "balance_after_minor", "created_at"],
            select(
                bindparam("entry_transfer_id", type_=Uuid()),
                moved.c.id,
                moved_amount,
                moved.c.balance_minor,
                bindparam("entry_now", type_=_ENTRIES.c.created_at.type),
            ).order_by(moved.c.id),
        )
        .cte("entries")
    )
    statement = select(moved.c.id, moved.c.balance_minor).add_cte(transfer, entries)
    return DriverStatement(statement)


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
        transfer_id = new_id()
        params: dict[str, object] = {}
        for index, (account_id, _, amount) in enumerate(moving):
            params[f"a{index}"], params[f"d{index}"] = account_id, amount
        if not self.db.is_sqlite:
            params.update(
                transfer_id=transfer_id,
                kind=kind,
                reference=reference,
                rate=rate,
                now=now,
                entry_transfer_id=transfer_id,
                entry_now=now,
            )
            returned = await _transfer_pg(len(moving)).rows(session, params)
            return self._after(moving, {account_id: int(b) for account_id, b in returned})
        # The transfer row first: on PostgreSQL the balance UPDATE below locks the accounts
        # (a merchant's and the platform's are hot) until COMMIT, so as little as possible
        # comes after it.
        await _INSERT_TRANSFER.rows(
            session,
            {
                "id": transfer_id,
                "kind": kind,
                "reference": reference,
                "rate": rate,
                "created_at": now,
            },
        )
        returned = await _move(len(moving), self.db.is_sqlite).rows(session, params)
        after = self._after(moving, {account_id: int(b) for account_id, b in returned})
        await _INSERT_ENTRY.many(
            session,
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

    @staticmethod
    def _after(
        moving: Sequence[tuple[uuid.UUID, AccountKey, int]], balances: dict[uuid.UUID, int]
    ) -> dict[AccountKey, int]:
        """Each moved account's balance after; `Insufficient` for one the UPDATE left out."""
        after: dict[AccountKey, int] = {}
        for account_id, key, _ in moving:
            if account_id not in balances:
                raise Insufficient(key)
            after[key] = balances[account_id]
        return after

    def adopt(self, session: AsyncSession) -> None:
        """After the caller's transaction committed: its new accounts are known for good."""
        self._ids.update(session.info.get("pay_accounts", {}))

    async def balances(self, owner_kind: AccountKind, owner: str) -> list[Money]:
        async with self.db.reads() as session:
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
