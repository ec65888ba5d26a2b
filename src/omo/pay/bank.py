"""Bank connectors: how money enters (top-up) and leaves (withdrawal) the platform.

`SandboxBank` is the built-in default: a bank with its own accounts that can be told to
decline, to time out, or to time out and then succeed late. A real bank is another class with
the same three methods.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

from omo.core.money import Money

Outcome = Literal["succeeded", "declined", "unknown"]


class BankTimeout(Exception):  # noqa: N818 - reads as the domain term
    """The bank did not answer in time; the transfer may still happen (ask `status` later)."""


class BankConnector(Protocol):
    async def debit(self, account: str, money: Money, reference: str) -> Outcome:
        """Take money from the person's bank account into the platform (top-up)."""
        ...

    async def credit(self, account: str, money: Money, reference: str) -> Outcome:
        """Pay money out of the platform into the person's bank account (withdrawal)."""
        ...

    async def status(self, reference: str) -> Outcome:
        """What became of a transfer whose answer was lost or late."""
        ...


Behaviour = Literal["succeed", "decline", "timeout", "late"]


@dataclass
class SandboxBank:
    """An in-process bank: every account starts with `opening_balance_major` per currency."""

    opening_balance_major: int = 1_000_000
    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    script: deque[Behaviour] = field(default_factory=deque)

    def then(self, *behaviours: Behaviour) -> None:
        """Queue how the next calls behave (tests and demos); afterwards they succeed."""
        self.script.extend(behaviours)

    def balance(self, account: str, currency: str) -> Money:
        return Money(self._balance(account, currency), currency)

    def _balance(self, account: str, currency: str) -> int:
        key = (account, currency)
        if key not in self.balances:
            self.balances[key] = Money.of(str(self.opening_balance_major), currency).amount_minor
        return self.balances[key]

    async def _move(self, account: str, delta: int, currency: str, reference: str) -> Outcome:
        await asyncio.sleep(0)
        if reference in self.outcomes:
            return self.outcomes[reference]
        behaviour = self.script.popleft() if self.script else "succeed"
        if behaviour == "decline" or self._balance(account, currency) + delta < 0:
            self.outcomes[reference] = "declined"
            return "declined"
        if behaviour == "timeout":
            self.outcomes[reference] = "declined"
            raise BankTimeout(reference)
        self.balances[(account, currency)] += delta
        self.outcomes[reference] = "succeeded"
        if behaviour == "late":
            raise BankTimeout(reference)
        return "succeeded"

    async def debit(self, account: str, money: Money, reference: str) -> Outcome:
        return await self._move(account, -money.amount_minor, money.currency, reference)

    async def credit(self, account: str, money: Money, reference: str) -> Outcome:
        return await self._move(account, money.amount_minor, money.currency, reference)

    async def status(self, reference: str) -> Outcome:
        return self.outcomes.get(reference, "declined")
