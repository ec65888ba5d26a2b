"""Domain events and the transactional outbox.

A change and the event it causes are written in the same transaction, so consumers (CRM,
insights, webhooks, notifications) never miss a touchpoint nor see one that was rolled back.
Consumers keep their own cursor and read at their own pace; they must be idempotent.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import JSON, Index, String, Table, Uuid, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime
from omo.core.ids import new_id


@dataclasses.dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Base of every context's events; subclasses set `topic` (e.g. "identity.signed_up")."""

    topic: ClassVar[str]


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    # Consumers of some topics read "after my cursor, these topics" without scanning the rest.
    __table_args__ = (Index("ix_outbox_events_topic_id", "topic", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxCursor(Base):
    __tablename__ = "outbox_cursors"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_event_id: Mapped[uuid.UUID] = mapped_column(Uuid)


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} in an event")


def record_event(session: AsyncSession, event: DomainEvent, occurred_at: datetime) -> uuid.UUID:
    """Add the event to the current transaction; it is visible only if the transaction commits."""
    payload = json.loads(json.dumps(dataclasses.asdict(event), default=_jsonable))
    row = OutboxEvent(id=new_id(), topic=event.topic, payload=payload, occurred_at=occurred_at)
    session.add(row)
    return row.id


_INSERT_EVENT = insert(cast(Table, OutboxEvent.__table__))


async def insert_event(
    session: AsyncSession, event: DomainEvent, occurred_at: datetime
) -> uuid.UUID:
    """`record_event` for hot paths: one prebuilt INSERT now instead of an ORM object that the
    session flushes at commit (a few hundred microseconds less per event)."""
    event_id = new_id()
    payload = json.loads(json.dumps(dataclasses.asdict(event), default=_jsonable))
    await session.execute(
        _INSERT_EVENT,
        {"id": event_id, "topic": event.topic, "payload": payload, "occurred_at": occurred_at},
    )
    return event_id


@dataclasses.dataclass(frozen=True, slots=True)
class StoredEvent:
    id: uuid.UUID
    topic: str
    payload: dict[str, Any]
    occurred_at: datetime


Handler = Callable[[AsyncSession, StoredEvent], Awaitable[None]]


async def read_after(
    session: AsyncSession, after: uuid.UUID | None, limit: int = 500, topics: Sequence[str] = ()
) -> list[StoredEvent]:
    query = select(OutboxEvent).order_by(OutboxEvent.id).limit(limit)
    if after is not None:
        query = query.where(OutboxEvent.id > after)
    if topics:
        query = query.where(OutboxEvent.topic.in_(topics))
    rows = (await session.scalars(query)).all()
    return [StoredEvent(r.id, r.topic, r.payload, r.occurred_at) for r in rows]


async def consume(
    session: AsyncSession,
    consumer: str,
    handler: Handler,
    limit: int = 500,
    topics: Sequence[str] = (),
) -> int:
    """Feed the consumer every event after its cursor, then move the cursor, in one transaction.

    Ids are time-ordered but two nodes' clocks may disagree slightly, so a consumer that
    needs strict completeness re-reads a short overlap; handlers are idempotent for this.
    """
    cursor = await session.get(OutboxCursor, consumer, with_for_update=True)
    events = await read_after(session, cursor.last_event_id if cursor else None, limit, topics)
    for event in events:
        await handler(session, event)
    if events:
        if cursor is None:
            session.add(OutboxCursor(consumer=consumer, last_event_id=events[-1].id))
        else:
            cursor.last_event_id = events[-1].id
    return len(events)
