"""Payment receipts: when pay records `payment.succeeded`, the customer gets a receipt card in
their conversation with the merchant's brand — if the merchant's organisation has an official
account the customer follows (follow = consent: no follow, no message from the brand; the
receipt is still in their wallet's history).

Driven from the transactional outbox: the receipt and the consumer's cursor are written in one
transaction, so each payment gives exactly one receipt even if OMO stops mid-way. Accounts
learns the merchant's organisation through pay's service (`merchant_brand`), never its tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omo.accounts.service import AccountService, ThreadItem
from omo.core.db import Database
from omo.core.errors import ProblemError
from omo.core.events import StoredEvent, consume

logger = logging.getLogger("omo.accounts.receipts")

CONSUMER = "accounts.receipts"
TOPIC = "payment.succeeded"  # omo.pay.events.PaymentSucceeded
# A receipt is news only while fresh: a deployment that gains this consumer does not send
# receipts for its whole payment history.
FRESH_FOR = timedelta(hours=1)
# Events per round (one transaction). Under a stream of payments a round that found fewer
# waits its interval before the next: many payments' receipts per transaction, not one each.
BATCH = 200


class ReceiptWorker:
    def __init__(
        self,
        service: AccountService,
        db: Database,
        pay: Callable[[], Any],
        *,
        interval: float = 0.5,
    ) -> None:
        """`pay` returns pay's service (it may start after this context)."""
        self.service, self.db, self.pay, self.interval = service, db, pay, interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run_forever(self) -> None:
        while True:
            try:
                if await self.run_once() < BATCH:  # caught up: let the next batch gather
                    await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("receipt round failed")
                await asyncio.sleep(self.interval * 4)

    async def run_once(self) -> int:
        """Handle the next batch of outbox events; returns how many were read."""
        sent: list[tuple[uuid.UUID, uuid.UUID, ThreadItem]] = []

        async def handle(session: AsyncSession, event: StoredEvent) -> None:
            if event.topic != TOPIC or event.occurred_at < self.service.clock.now() - FRESH_FOR:
                return
            receipt = await self._receipt(session, event.payload)
            if receipt is not None:
                sent.append(receipt)

        async with self.db.transaction() as session:
            read = await consume(session, CONSUMER, handle, limit=BATCH, topics=(TOPIC,))
        for user_id, account_id, item in sent:  # realtime push after the commit
            await self.service.push_items(user_id, account_id, [item])
        return read

    async def _receipt(
        self, session: AsyncSession, p: dict[str, Any]
    ) -> tuple[uuid.UUID, uuid.UUID, ThreadItem] | None:
        pay = self.pay()
        if pay is None:
            return None
        try:
            organisation, name = await pay.merchant_brand(uuid.UUID(p["merchant_id"]))
            organisation_id = uuid.UUID(str(organisation))
        except (ProblemError, ValueError):
            return None
        user_id = uuid.UUID(p["user_id"])
        written = await self.service.append_receipt(
            session,
            organisation_id=organisation_id,
            merchant_name=str(name),
            user_id=user_id,
            payment_id=str(p["payment_id"]),
            order_id=str(p["order_id"]),
            currency=str(p["currency"]),
            amount_minor=int(p["amount_minor"]),
            discount_minor=int(p.get("discount_minor") or 0),
        )
        if written is None:
            return None
        account_id, item = written
        return user_id, account_id, item
