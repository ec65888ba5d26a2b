"""Sponsored posts in the Moments timeline: a brand's post from its official account, shown
to the people its simple targeting names, marked as sponsored, within a daily frequency cap per
person, never to someone who opted out of that brand's ads or of all sponsored posts, and never
to someone blocked by (or blocking) the brand member who made it. See docs/SOCIAL.md.

Targeting is what exists today, without insights: the account's followers, followers with one
of the account's tags, and a place with a radius (matched against the position the app sends
with the timeline request, which is used for that request only and never stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from omo.accounts.service import AccountService
from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.events import record_event
from omo.core.ids import new_id
from omo.messaging.service import MessagingService
from omo.social import events
from omo.social.models import Sponsored, SponsoredImpression, SponsoredOptOut
from omo.social.service import _check_card

register("invalid-sponsored", 422, "That sponsored post cannot be published")
register("sponsored-not-found", 404, "No such sponsored post")

ALL_BRANDS = uuid.UUID(int=0)  # the opt-out row that means "no sponsored posts at all"
MANAGERS = ("owner", "admin")
DAILY_CAP_MAX = 10
LONGEST = timedelta(days=90)
RADIUS_M = (100, 50_000)
REFRESH_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Targeting:
    followers_only: bool = False
    tag_ids: tuple[int, ...] = ()
    place: tuple[float, float, int] | None = None  # latitude, longitude, radius in metres


@dataclass(frozen=True, slots=True)
class SponsoredView:
    id: uuid.UUID
    account_id: uuid.UUID
    account_name: str
    text: str
    card: dict[str, Any] | None
    targeting: Targeting
    daily_cap: int
    starts_at: datetime
    ends_at: datetime
    stopped: bool
    shown: int = 0  # impressions so far (the brand's own list only)


@dataclass(frozen=True, slots=True)
class Preferences:
    no_sponsored: bool
    hidden_accounts: list[uuid.UUID]


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lng1, lat2, lng2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def _targeting(row: Sponsored) -> Targeting:
    place = row.place
    return Targeting(
        row.followers_only,
        tuple(row.tag_ids or ()),
        (place["latitude"], place["longitude"], place["radius_m"]) if place else None,
    )


class SponsoredService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        messaging: MessagingService,
        accounts: AccountService,
    ) -> None:
        self.db = db
        self.clock = clock
        self.messaging = messaging
        self.accounts = accounts
        self._serial = asyncio.Lock() if db.is_sqlite else None
        self._active: list[Sponsored] = []
        self._loaded = -math.inf

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        if self._serial is None:
            async with self.db.transaction() as session:
                yield session
            return
        async with self._serial, self.db.transaction() as session:
            yield session

    # -- the brand's side ----------------------------------------------------------------

    async def managing(self, user_id: uuid.UUID, account_id: uuid.UUID) -> None:
        """404 unless the person is an owner or admin of the account's brand."""
        await self.accounts.managed(user_id, account_id, MANAGERS)

    async def create(
        self,
        user_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        text: str,
        card: dict[str, Any] | None,
        targeting: Targeting,
        daily_cap: int,
        starts_at: datetime | None,
        ends_at: datetime,
    ) -> SponsoredView:
        await self.managing(user_id, account_id)
        text = text.strip()
        if not text:
            raise ProblemError("invalid-sponsored", "Write what the post says.")
        if not 1 <= daily_cap <= DAILY_CAP_MAX:
            raise ProblemError("invalid-sponsored", "Show it at most 10 times a day to one person.")
        now = self.clock.now()
        starts_at = starts_at or now
        if not starts_at < ends_at <= starts_at + LONGEST or ends_at <= now:
            raise ProblemError("invalid-sponsored", "Run it for at most 90 days, ending later.")
        if targeting.tag_ids:
            known = {tag_id for tag_id, _name, _n in await self.accounts.tags(account_id)}
            if not set(targeting.tag_ids) <= known:
                raise ProblemError("invalid-sponsored", "Target your own account's tags.")
        place = None
        if targeting.place is not None:
            latitude, longitude, radius = targeting.place
            if not RADIUS_M[0] <= radius <= RADIUS_M[1]:
                raise ProblemError("invalid-sponsored", "Choose a radius of 100 m to 50 km.")
            place = {"latitude": latitude, "longitude": longitude, "radius_m": radius}
        row = Sponsored(
            id=new_id(),
            account_id=account_id,
            creator_id=user_id,
            text=text,
            card=_check_card(card) if card is not None else None,
            followers_only=targeting.followers_only or bool(targeting.tag_ids),
            tag_ids=sorted(set(targeting.tag_ids)),
            place=place,
            daily_cap=daily_cap,
            starts_at=starts_at,
            ends_at=ends_at,
            created_at=now,
            stopped_at=None,
        )
        async with self._transaction() as session:
            session.add(row)
        self._loaded = -math.inf
        return await self._view(row)

    async def _view(self, row: Sponsored, shown: int = 0) -> SponsoredView:
        account = await self.accounts.account(row.account_id)
        return SponsoredView(
            row.id,
            row.account_id,
            account.name,
            row.text,
            row.card,
            _targeting(row),
            row.daily_cap,
            row.starts_at,
            row.ends_at,
            row.stopped_at is not None,
            shown,
        )

    async def of_account(self, user_id: uuid.UUID, account_id: uuid.UUID) -> list[SponsoredView]:
        """The account's sponsored posts with how often they were shown (totals only)."""
        await self.accounts.managed(user_id, account_id)
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(Sponsored)
                    .where(Sponsored.account_id == account_id)
                    .order_by(Sponsored.created_at.desc())
                )
            ).all()
            totals: dict[uuid.UUID, int] = {
                row[0]: int(row[1] or 0)
                for row in (
                    await session.execute(
                        select(
                            SponsoredImpression.sponsored_id, func.sum(SponsoredImpression.shown)
                        )
                        .where(SponsoredImpression.sponsored_id.in_([r.id for r in rows]))
                        .group_by(SponsoredImpression.sponsored_id)
                    )
                ).all()
            }
        return [await self._view(row, int(totals.get(row.id) or 0)) for row in rows]

    async def stop(self, user_id: uuid.UUID, sponsored_id: uuid.UUID) -> None:
        async with self.db.sessions() as session:
            row = await session.get(Sponsored, sponsored_id)
        if row is None:
            raise ProblemError("sponsored-not-found", "There is no such sponsored post.")
        try:
            await self.managing(user_id, row.account_id)
        except ProblemError as refused:
            if refused.status == 403:
                raise
            raise ProblemError("sponsored-not-found", "There is no such sponsored post.") from None
        async with self._transaction() as session:
            stored = await session.get(Sponsored, sponsored_id)
            if stored is not None and stored.stopped_at is None:
                stored.stopped_at = self.clock.now()
        self._loaded = -math.inf

    # -- the person's side ---------------------------------------------------------------

    async def preferences(self, user_id: uuid.UUID) -> Preferences:
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(SponsoredOptOut.account_id)
                    .where(SponsoredOptOut.user_id == user_id)
                    .order_by(SponsoredOptOut.created_at)
                )
            ).all()
        return Preferences(ALL_BRANDS in rows, [r for r in rows if r != ALL_BRANDS])

    async def opt_out(self, user_id: uuid.UUID, account_id: uuid.UUID | None = None) -> None:
        """Hide this brand's ads (an account id), or every sponsored post (None)."""
        key = account_id or ALL_BRANDS
        async with self._transaction() as session:
            if await session.get(SponsoredOptOut, (user_id, key)) is None:
                session.add(
                    SponsoredOptOut(user_id=user_id, account_id=key, created_at=self.clock.now())
                )

    async def opt_in(self, user_id: uuid.UUID, account_id: uuid.UUID | None = None) -> None:
        key = account_id or ALL_BRANDS
        async with self._transaction() as session:
            await session.execute(
                delete(SponsoredOptOut).where(
                    SponsoredOptOut.user_id == user_id, SponsoredOptOut.account_id == key
                )
            )

    async def _running(self) -> list[Sponsored]:
        """Running sponsored posts, read again every 30 s (none: the timeline pays nothing)."""
        if time.monotonic() - self._loaded > REFRESH_SECONDS:
            now = self.clock.now()
            async with self.db.sessions() as session:
                self._active = list(
                    (
                        await session.scalars(
                            select(Sponsored).where(
                                Sponsored.stopped_at.is_(None), Sponsored.ends_at > now
                            )
                        )
                    ).all()
                )
            self._loaded = time.monotonic()
        now = self.clock.now()
        return [s for s in self._active if s.starts_at <= now < s.ends_at]

    async def _targets(
        self, row: Sponsored, user_id: uuid.UUID, here: tuple[float, float] | None
    ) -> bool:
        if row.place is not None:
            if here is None:
                return False
            centre = (row.place["latitude"], row.place["longitude"])
            if _metres(here, centre) > row.place["radius_m"]:
                return False
        if row.tag_ids:
            tags = await self.accounts.follower_tag_ids(row.account_id, user_id)
            return bool(tags & set(row.tag_ids))
        if row.followers_only:
            return await self.accounts.is_following(user_id, row.account_id)
        return True

    async def pick(
        self, user_id: uuid.UUID, here: tuple[float, float] | None = None
    ) -> SponsoredView | None:
        """The sponsored post for this person's timeline now, counted as shown; None when
        nothing running targets them, they opted out, or every cap is reached."""
        running = await self._running()
        if not running:
            return None
        now = self.clock.now()
        day = now.date().isoformat()
        async with self.db.sessions() as session:
            opted = set(
                (
                    await session.scalars(
                        select(SponsoredOptOut.account_id).where(SponsoredOptOut.user_id == user_id)
                    )
                ).all()
            )
            if ALL_BRANDS in opted:
                return None
            candidates = [s for s in running if s.account_id not in opted]
            shown: dict[uuid.UUID, int] = {
                row[0]: row[1]
                for row in (
                    await session.execute(
                        select(SponsoredImpression.sponsored_id, SponsoredImpression.shown).where(
                            SponsoredImpression.user_id == user_id,
                            SponsoredImpression.day == day,
                            SponsoredImpression.sponsored_id.in_([s.id for s in candidates]),
                        )
                    )
                ).all()
            }
        candidates = [s for s in candidates if shown.get(s.id, 0) < s.daily_cap]
        if not candidates:
            return None
        blocked = await self.messaging.blocked_either_way(
            user_id, list({s.creator_id for s in candidates})
        )
        candidates.sort(key=lambda s: (shown.get(s.id, 0), s.created_at, s.id))
        for row in candidates:
            if row.creator_id in blocked or not await self._targets(row, user_id, here):
                continue
            if not await self._count(row, user_id, day):
                continue
            return await self._view(row)
        return None

    async def _count(self, row: Sponsored, user_id: uuid.UUID, day: str) -> bool:
        """One more impression, within the cap even when two timelines load at once (the
        loser of a race on the first impression of the day shows nothing this time)."""
        try:
            async with self._transaction() as session:
                seen = await session.get(
                    SponsoredImpression, (row.id, user_id, day), with_for_update=True
                )
                if seen is None:
                    session.add(
                        SponsoredImpression(sponsored_id=row.id, user_id=user_id, day=day, shown=1)
                    )
                elif seen.shown >= row.daily_cap:
                    return False
                else:
                    seen.shown += 1
                record_event(
                    session,
                    events.SponsoredShown(
                        sponsored_id=row.id, account_id=row.account_id, user_id=user_id
                    ),
                    self.clock.now(),
                )
        except IntegrityError:
            return False
        return True
