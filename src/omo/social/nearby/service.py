"""People Nearby, Places nearby and Shake: the rules (see docs/SOCIAL_NEARBY.md).

- People Nearby is opt-in and time-limited: turning it on makes a person visible in their
  H3 cell for a few hours; "clear my location" removes them at once. Only cells are stored.
- A person's answer depends only on their cell and the others' cells (see `grid`).
- A person cannot move faster than a train: a position too far from the previous one for the
  time elapsed is refused, so one account cannot sample a victim from many places at once.
- Nearby queries are rate-limited per person.
- A greeting is a friend request through messaging: no phone number, no id is revealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from omo.accounts.service import AccountService
from omo.core.broker import Broker
from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.events import DomainEvent, OutboxEvent, record_event
from omo.core.ratelimit import Limit, RateLimiter
from omo.coupons.service import CouponService
from omo.identity.service import IdentityService, PublicProfile
from omo.messaging.service import MessagingService
from omo.pay import service as pay_service
from omo.social.nearby import events
from omo.social.nearby.grid import (
    CellIndex,
    Entry,
    Found,
    cell_distance,
    disk,
    listing,
    metres,
    neighbours,
    snap,
)
from omo.social.nearby.models import AccountPlace, Presence, ShakeBinding, ShakeMatch, Track
from omo.social.nearby.shake import AGAIN, ALONE, PAIRED, Matcher, MemoryMatcher
from omo.social.nearby.shake import RESOLUTION as SHAKE_RESOLUTION

logger = logging.getLogger("omo.social.nearby")

INDEX_CHANNEL = "social.nearby.index"

register("nearby-not-visible", 409, "People Nearby is off")
register("nearby-impossible-jump", 409, "Position refused")
register("nearby-person-gone", 404, "This person is no longer nearby")
register("nearby-beacon-taken", 409, "Another shop uses this beacon")
register("nearby-invalid-page", 400, "The page cannot be bound")

NEARBY_QUERIES_PER_PERSON = Limit("nearby-query-person", 30, 60)
PLACES_QUERIES_PER_PERSON = Limit("nearby-places-person", 60, 60)
SHAKES_PER_PERSON = Limit("shake-person", 30, 60)


@dataclass(frozen=True, slots=True)
class NearbyConfig:
    visible_for: timedelta = timedelta(hours=4)
    longest_visible_for: timedelta = timedelta(hours=12)
    max_speed_kmh: float = 300.0  # a fast train; an aeroplane lands and starts again
    jump_slack_m: float = 2000.0  # GPS noise and the cells' own size
    radius_m: float = 5000.0
    limit: int = 20
    queries: Limit = NEARBY_QUERIES_PER_PERSON
    track_kept: timedelta = timedelta(hours=24)
    sweep_seconds: float = 30.0
    places_radius_m: float = 2000.0
    places_limit: int = 20
    places_queries: Limit = PLACES_QUERIES_PER_PERSON
    places_refresh_seconds: float = 30.0
    shake_window: float = 2.0  # seconds of server time in which two shakes are "together"
    shake_settle: float = 0.25  # waits this long for a third; partners shake at most this apart
    shakes: Limit = SHAKES_PER_PERSON
    shake_greet_for: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Visibility:
    visible: bool
    visible_until: datetime | None


@dataclass(frozen=True, slots=True)
class NearbyPerson:
    handle: str
    band: str
    profile: PublicProfile


@dataclass(frozen=True, slots=True)
class ShopPage:
    beacon: str
    title: str
    kind: str  # "offer" (a coupon campaign id) | "miniprogram" (a URL)
    target: str


@dataclass(frozen=True, slots=True)
class ShakeResult:
    outcome: str  # "paired" | "again" | "alone" | "shop"
    partner: PublicProfile | None = None
    page: ShopPage | None = None
    greet_token: str | None = None  # greets the partner (a friend request) for a few minutes


@dataclass(frozen=True, slots=True)
class PlaceOffer:
    campaign_id: uuid.UUID
    title: str
    kind: str
    ends_at: datetime
    left: int


@dataclass(frozen=True, slots=True)
class Place:
    kind: str  # "store" (a shop in pay) | "account" (an official account's own place)
    store_id: uuid.UUID | None
    merchant_id: uuid.UUID | None
    merchant_name: str
    name: str
    distance_m: int  # rounded to 50 m: a shop's place is public, a person's is not
    offers: list[PlaceOffer]
    account_id: uuid.UUID | None = None
    account_name: str | None = None
    busy: str | None = None  # "quiet" | "busy" | "very-busy", or None: too few to say


@dataclass(frozen=True, slots=True)
class AccountPlaceView:
    account_id: uuid.UUID
    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class _Located:
    """One entry of the places index: a store, or an account's place."""

    kind: str
    name: str
    latitude: float
    longitude: float
    organisation_id: str
    store_id: uuid.UUID | None = None
    merchant_id: uuid.UUID | None = None
    merchant_name: str = ""
    account_id: uuid.UUID | None = None
    account_name: str | None = None


# "How busy now": distinct people who paid with OMO there in the last hour (payment.succeeded
# events in the stream). Fewer than BUSY_MIN says nothing (one visit is nobody's business).
BUSY_WINDOW = timedelta(hours=1)
BUSY_MIN = 3
BUSY_LEVELS = ((30, "very-busy"), (10, "busy"), (BUSY_MIN, "quiet"))
ACCOUNT_PLACE_MERGE_M = 200.0  # an account's place this close to one of its stores: one entry


def busy_level(people: int) -> str | None:
    return next((level for least, level in BUSY_LEVELS if people >= least), None)


def _ts(moment: datetime) -> float:
    return moment.timestamp()


@dataclass
class NearbyService:
    db: Database
    clock: Clock
    broker: Broker
    identity: IdentityService
    messaging: MessagingService
    secret: bytes
    limiter: RateLimiter | None = None
    coupons: CouponService | None = None
    pay: pay_service.PayService | None = None
    matcher: Matcher | None = None
    config: NearbyConfig = field(default_factory=NearbyConfig)
    index: CellIndex = field(default_factory=CellIndex)
    accounts: AccountService | None = None
    _stores: dict[str, list[_Located]] = field(default_factory=dict)
    _busy: dict[str, int] = field(default_factory=dict)
    _busy_loaded: float = -math.inf
    _stores_loaded: float = -math.inf
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _serial: asyncio.Lock | None = None

    def __post_init__(self) -> None:
        # SQLite has one writer: queue this context's writes here rather than in its lock.
        self._serial = asyncio.Lock() if self.db.is_sqlite else None
        if self.matcher is None:
            self.matcher = MemoryMatcher(self.config.shake_window)

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        subscription = await self.broker.subscribe(INDEX_CHANNEL).open()
        await self.reload()
        self._tasks.append(asyncio.create_task(self._listen(subscription), name="omo-nearby-index"))
        self._tasks.append(asyncio.create_task(self._sweep_forever(), name="omo-nearby-sweep"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        assert self.matcher is not None
        await self.matcher.close()

    async def reload(self) -> None:
        """Fill this node's index from the database (at start)."""
        now = self.clock.now()
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(select(Presence).where(Presence.visible_until > now))
            ).all()
        self.index.load(Entry(r.handle, r.user_id, r.cell, _ts(r.visible_until)) for r in rows)
        # A million long-lived entries: keep the collector from walking them on every pass.
        gc.freeze()

    async def _listen(self, subscription: Any) -> None:
        async with subscription:
            async for _channel, message in subscription:
                try:
                    self._apply(message)
                except (KeyError, ValueError):
                    logger.warning("ignored a malformed nearby index message")

    def _apply(self, message: dict[str, Any]) -> None:
        user_id = uuid.UUID(message["user"])
        if message["op"] == "del":
            self.index.remove(user_id)
        else:
            self.index.put(Entry(message["handle"], user_id, message["cell"], message["until"]))

    async def _publish(self, message: dict[str, Any]) -> None:
        self._apply(message)  # this node at once; the others through the broker
        await self.broker.publish(INDEX_CHANNEL, message)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_seconds)
            try:
                await self.sweep()
            except Exception:  # a failed sweep is retried at the next tick
                logger.exception("nearby sweep failed")

    async def sweep(self) -> int:
        """Clear everyone whose visibility ran out, and positions too old to matter."""
        now = self.clock.now()
        async with self._transaction() as session:
            gone = (
                await session.scalars(select(Presence.user_id).where(Presence.visible_until <= now))
            ).all()
            if gone:
                await session.execute(delete(Presence).where(Presence.user_id.in_(gone)))
            await session.execute(delete(Track).where(Track.at <= now - self.config.track_kept))
            await session.execute(delete(ShakeMatch).where(ShakeMatch.until <= now))
        self.index.expire(_ts(now))
        return len(gone)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        if self._serial is None:
            async with self.db.transaction() as session:
                yield session
            return
        async with self._serial, self.db.transaction() as session:
            yield session

    def _record(self, session: AsyncSession, event: DomainEvent) -> None:
        record_event(session, event, self.clock.now())

    # -- position ----------------------------------------------------------------------------

    async def _move(self, session: AsyncSession, user_id: uuid.UUID, cell: str) -> None:
        """Keep the person's last cell for the speed limit; refuse an impossible jump."""
        now = self.clock.now()
        track = await session.get(Track, user_id, with_for_update=True)
        if track is None:
            session.add(Track(user_id=user_id, cell=cell, at=now))
            return
        elapsed = max(0.0, (now - track.at).total_seconds())
        reachable = self.config.jump_slack_m + self.config.max_speed_kmh / 3.6 * elapsed
        distance = cell_distance(track.cell, cell)
        if distance > reachable:
            speed = self.config.max_speed_kmh / 3.6
            wait = max(1, math.ceil((distance - self.config.jump_slack_m) / speed - elapsed))
            raise ProblemError(
                "nearby-impossible-jump",
                "That is too far from where you were %(minutes)d minutes ago.",
                params={"minutes": max(1, round(elapsed / 60))},
                headers={"Retry-After": str(wait)},
                retry_after=wait,
            )
        track.cell, track.at = cell, now

    # -- People Nearby ---------------------------------------------------------------------

    async def visibility(self, user_id: uuid.UUID) -> Visibility:
        now = self.clock.now()
        async with self.db.sessions() as session:
            presence = await session.get(Presence, user_id)
        if presence is None or presence.visible_until <= now:
            return Visibility(False, None)
        return Visibility(True, presence.visible_until)

    async def turn_on(
        self,
        user_id: uuid.UUID,
        latitude: float,
        longitude: float,
        duration: timedelta | None = None,
    ) -> Visibility:
        """Become visible to people nearby (who did the same) for `duration`."""
        duration = duration or self.config.visible_for
        if not timedelta(minutes=1) <= duration <= self.config.longest_visible_for:
            raise ProblemError(
                "validation-error",
                "Stay visible between 1 minute and %(hours)d hours.",
                params={"hours": self.config.longest_visible_for // timedelta(hours=1)},
            )
        cell = snap(latitude, longitude)
        now = self.clock.now()
        async with self._transaction() as session:
            await self._move(session, user_id, cell)
            presence = await session.get(Presence, user_id, with_for_update=True)
            if presence is None:
                presence = Presence(
                    user_id=user_id,
                    cell=cell,
                    handle=secrets.token_urlsafe(12),
                    visible_until=now + duration,
                    since=now,
                )
                session.add(presence)
            else:
                presence.cell, presence.visible_until = cell, now + duration
            entry = self._message(presence)
        await self._publish(entry)
        return Visibility(True, now + duration)

    @staticmethod
    def _message(presence: Presence) -> dict[str, Any]:
        return {
            "op": "put",
            "user": str(presence.user_id),
            "handle": presence.handle,
            "cell": presence.cell,
            "until": _ts(presence.visible_until),
        }

    async def clear(self, user_id: uuid.UUID) -> None:
        """Clear my location: nobody sees the person from now on."""
        async with self._transaction() as session:
            await session.execute(delete(Presence).where(Presence.user_id == user_id))
            self._record(session, events.LocationCleared(user_id=user_id))
        await self._publish({"op": "del", "user": str(user_id)})

    async def people(
        self, user_id: uuid.UUID, latitude: float, longitude: float
    ) -> tuple[datetime, list[NearbyPerson]]:
        """People nearby who are visible, for a person who is visible too (and until when
        that person stays visible)."""
        if self.limiter:
            await self.limiter.hit(self.config.queries, str(user_id))
        cell = snap(latitude, longitude)
        now = self.clock.now()
        async with self._transaction() as session:
            presence = await session.get(Presence, user_id, with_for_update=True)
            if presence is None or presence.visible_until <= now:
                raise ProblemError("nearby-not-visible", "Turn on People Nearby to see others.")
            await self._move(session, user_id, cell)
            presence.cell = cell
            until = presence.visible_until
            entry = self._message(presence)
            found = self.around(cell, exclude=user_id)
            self._record(
                session, events.PeopleNearbyVisited(user_id=user_id, cell=cell, shown=len(found))
            )
        await self._publish(entry)
        found = await self._still_visible(found)
        blocked = await self.messaging.blocked_either_way(user_id, [f.entry.user_id for f in found])
        found = [f for f in found if f.entry.user_id not in blocked]
        profiles = await self.identity.public_profiles([f.entry.user_id for f in found])
        return until, [
            NearbyPerson(f.entry.handle, f.band, profiles[f.entry.user_id])
            for f in listing(self.secret, cell, found)
            if f.entry.user_id in profiles
        ]

    def around(self, cell: str, exclude: uuid.UUID | None = None) -> list[Found]:
        """The read path: this node's index, nothing else (what bench/nearby.py measures)."""
        return self.index.nearest(
            cell,
            _ts(self.clock.now()),
            limit=self.config.limit,
            radius_m=self.config.radius_m,
            exclude=exclude,
        )

    async def _still_visible(self, found: list[Found]) -> list[Found]:
        """Drop anyone the database no longer shows (a clear another node's message missed)."""
        if not found:
            return found
        now = self.clock.now()
        async with self.db.sessions() as session:
            rows = (
                await session.execute(
                    select(Presence.user_id, Presence.handle).where(
                        Presence.user_id.in_([f.entry.user_id for f in found]),
                        Presence.visible_until > now,
                    )
                )
            ).all()
        live = {(user_id, handle) for user_id, handle in rows}
        return [f for f in found if (f.entry.user_id, f.entry.handle) in live]

    async def greet(self, user_id: uuid.UUID, handle: str) -> str:
        """Say hello to someone listed nearby: a friend request, nothing else is revealed."""
        now = self.clock.now()
        async with self.db.sessions() as session:
            mine = await session.get(Presence, user_id)
            theirs = await session.scalar(select(Presence).where(Presence.handle == handle))
        if mine is None or mine.visible_until <= now:
            raise ProblemError("nearby-not-visible", "Turn on People Nearby to see others.")
        if (
            theirs is None
            or theirs.visible_until <= now
            or theirs.user_id == user_id
            or cell_distance(mine.cell, theirs.cell) >= self.config.radius_m
        ):
            raise ProblemError("nearby-person-gone", "This person is no longer nearby.")
        peer = (await self.identity.public_profiles([theirs.user_id])).get(theirs.user_id)
        if peer is None or await self.messaging.blocked_either_way(user_id, [peer.user_id]):
            raise ProblemError("nearby-person-gone", "This person is no longer nearby.")
        status = await self.messaging.request_friend(user_id, peer.omo_id)
        async with self._transaction() as session:
            self._record(session, events.Greeted(user_id=user_id, greeted_id=theirs.user_id))
        return status

    # -- Places nearby ---------------------------------------------------------------------

    async def _located_stores(self) -> dict[str, list[_Located]]:
        """Stores (pay) and official accounts' places, by cell, read again every 30 s."""
        if time.monotonic() - self._stores_loaded > self.config.places_refresh_seconds:
            located = [
                _Located(
                    "store",
                    store.name,
                    store.latitude,
                    store.longitude,
                    store.organisation_id,
                    store_id=store.store_id,
                    merchant_id=store.merchant_id,
                    merchant_name=store.merchant_name,
                )
                for store in await pay_service.located_stores(self.db)
            ]
            async with self.db.sessions() as session:
                places = (await session.scalars(select(AccountPlace))).all()
            by_org: dict[str, tuple[uuid.UUID, str]] = {}
            for place in places:
                account_name = await self._account_name(place.account_id)
                if account_name is None:
                    continue
                by_org.setdefault(str(place.organisation_id), (place.account_id, account_name))
                here = (place.latitude, place.longitude)
                if any(
                    s.organisation_id == str(place.organisation_id)
                    and metres(here, (s.latitude, s.longitude)) <= ACCOUNT_PLACE_MERGE_M
                    for s in located
                    if s.kind == "store"
                ):
                    continue  # its store is listed, with the account on it
                located.append(
                    _Located(
                        "account",
                        place.name,
                        place.latitude,
                        place.longitude,
                        str(place.organisation_id),
                        account_id=place.account_id,
                        account_name=account_name,
                    )
                )
            by_cell: dict[str, list[_Located]] = {}
            for entry in located:
                if entry.kind == "store" and entry.organisation_id in by_org:
                    account_id, account_name = by_org[entry.organisation_id]
                    entry = dataclasses.replace(
                        entry, account_id=account_id, account_name=account_name
                    )
                by_cell.setdefault(snap(entry.latitude, entry.longitude), []).append(entry)
            self._stores, self._stores_loaded = by_cell, time.monotonic()
        return self._stores

    async def _account_name(self, account_id: uuid.UUID) -> str | None:
        if self.accounts is None:
            return None
        try:
            return (await self.accounts.account(account_id)).name
        except ProblemError:
            return None  # the account is gone: its place is not listed

    def forget_places(self) -> None:
        """Read the stores again at the next query (after a store was added)."""
        self._stores_loaded = -math.inf
        self._busy_loaded = -math.inf

    async def _how_busy(self) -> dict[str, int]:
        """Distinct payers in the last hour, by store id (and by merchant id for payments made
        without a store), counted from the event stream; read again every 30 s."""
        if time.monotonic() - self._busy_loaded <= self.config.places_refresh_seconds:
            return self._busy
        since = self.clock.now() - BUSY_WINDOW
        async with self.db.sessions() as session:
            payloads = (
                await session.scalars(
                    select(OutboxEvent.payload).where(
                        OutboxEvent.topic == "payment.succeeded", OutboxEvent.occurred_at >= since
                    )
                )
            ).all()
        people: dict[str, set[str]] = {}
        for payload in payloads:
            where = payload.get("store_id") or f"merchant:{payload.get('merchant_id')}"
            people.setdefault(str(where), set()).add(str(payload.get("user_id")))
        self._busy = {where: len(who) for where, who in people.items()}
        self._busy_loaded = time.monotonic()
        return self._busy

    async def places(self, user_id: uuid.UUID, latitude: float, longitude: float) -> list[Place]:
        """Shops and official accounts' places near the person, nearest first, with the
        coupons they offer right now and how busy they are (when enough people paid there)."""
        if self.limiter:
            await self.limiter.hit(self.config.places_queries, str(user_id))
        here = (latitude, longitude)
        cell = snap(latitude, longitude)
        stores = await self._located_stores()
        near: list[tuple[float, _Located]] = []
        for around in disk(cell, self.config.places_radius_m + 1000):
            for entry in stores.get(around, ()):
                distance = metres(here, (entry.latitude, entry.longitude))
                if distance <= self.config.places_radius_m:
                    near.append((distance, entry))
        near.sort(key=lambda found: (found[0], str(found[1].store_id or found[1].account_id)))
        near = near[: self.config.places_limit]
        merchants = {e.merchant_id for _, e in near if e.merchant_id is not None}
        of_org = await pay_service.merchants_of_organisations(
            self.db, {e.organisation_id for _, e in near if e.kind == "account"}
        )
        for ids in of_org.values():
            merchants.update(ids)
        offers = await self._offers(merchants)
        busy = await self._how_busy()
        places = []
        for distance, entry in near:
            if entry.kind == "store":
                assert entry.merchant_id is not None
                shown = [
                    offer
                    for offer, stores_of in offers.get(entry.merchant_id, [])
                    if not stores_of or str(entry.store_id) in stores_of
                ]
                people = busy.get(str(entry.store_id), 0)
            else:
                owned = of_org.get(entry.organisation_id, [])
                shown = [o for m in owned for o, stores_of in offers.get(m, []) if not stores_of]
                people = sum(busy.get(f"merchant:{m}", 0) for m in owned)
            places.append(
                Place(
                    entry.kind,
                    entry.store_id,
                    entry.merchant_id,
                    entry.merchant_name,
                    entry.name,
                    int(round(distance / 50) * 50),
                    shown,
                    account_id=entry.account_id,
                    account_name=entry.account_name,
                    busy=busy_level(people),
                )
            )
        async with self._transaction() as session:
            self._record(
                session, events.PlacesNearbyVisited(user_id=user_id, cell=cell, shown=len(places))
            )
        return places

    async def _offers(
        self, merchants: set[uuid.UUID]
    ) -> dict[uuid.UUID, list[tuple[PlaceOffer, list[str]]]]:
        if self.coupons is None:
            return {}
        now = self.clock.now()
        found: dict[uuid.UUID, list[tuple[PlaceOffer, list[str]]]] = {}
        for merchant in merchants:
            for campaign in await self.coupons.campaigns_of(str(merchant)):
                left = campaign.total_stock - campaign.claimed
                if campaign.starts_at <= now < campaign.ends_at and left > 0:
                    offer = PlaceOffer(
                        campaign.id, campaign.title, campaign.kind, campaign.ends_at, left
                    )
                    found.setdefault(merchant, []).append((offer, campaign.stores))
        return found

    async def managing(self, user_id: uuid.UUID, account_id: uuid.UUID) -> None:
        """404 unless the person is an owner or admin of the account's brand."""
        assert self.accounts is not None
        await self.accounts.managed(user_id, account_id, ("owner", "admin"))

    async def set_account_place(
        self,
        user_id: uuid.UUID,
        account_id: uuid.UUID,
        name: str,
        latitude: float,
        longitude: float,
    ) -> AccountPlaceView:
        """An owner or admin of the brand says where its official account is."""
        assert self.accounts is not None
        account = await self.accounts.managed(user_id, account_id, ("owner", "admin"))
        name = name.strip()
        if not name:
            raise ProblemError("validation-error", "Name the place.")
        async with self._transaction() as session:
            row = await session.get(AccountPlace, account_id, with_for_update=True)
            if row is None:
                row = AccountPlace(account_id=account_id, organisation_id=account.organisation_id)
                session.add(row)
            row.name, row.latitude, row.longitude = name, latitude, longitude
            row.updated_at = self.clock.now()
        self.forget_places()
        return AccountPlaceView(account_id, name, latitude, longitude)

    async def account_place(
        self, user_id: uuid.UUID, account_id: uuid.UUID
    ) -> AccountPlaceView | None:
        assert self.accounts is not None
        await self.accounts.managed(user_id, account_id)
        async with self.db.sessions() as session:
            row = await session.get(AccountPlace, account_id)
        if row is None:
            return None
        return AccountPlaceView(account_id, row.name, row.latitude, row.longitude)

    async def clear_account_place(self, user_id: uuid.UUID, account_id: uuid.UUID) -> None:
        assert self.accounts is not None
        await self.accounts.managed(user_id, account_id, ("owner", "admin"))
        async with self._transaction() as session:
            await session.execute(delete(AccountPlace).where(AccountPlace.account_id == account_id))
        self.forget_places()

    # -- Shake -----------------------------------------------------------------------------

    async def shake(
        self, user_id: uuid.UUID, latitude: float, longitude: float, beacon: str | None = None
    ) -> ShakeResult:
        """Shake: the page of the shop whose beacon this is, or the one person who shook
        nearby at the same time; several such people: shake again."""
        if self.limiter:
            await self.limiter.hit(self.config.shakes, str(user_id))
        cell = snap(latitude, longitude)
        if beacon:
            page = await self._page(beacon)
            if page is not None:
                await self._shaken(user_id, cell, "shop", beacon=beacon)
                return ShakeResult("shop", page=page)
        outcome, partner_id = await self.match(user_id, latitude, longitude)
        partner = None
        token = None
        if partner_id is not None:
            partner = (await self.identity.public_profiles([partner_id])).get(partner_id)
            token = secrets.token_urlsafe(18)
        await self._shaken(user_id, cell, outcome, partner_id=partner_id, greet_token=token)
        return ShakeResult(outcome, partner=partner, greet_token=token)

    async def greet_shaken(self, user_id: uuid.UUID, token: str) -> str:
        """Greet the person one just shook with: a friend request, nothing else revealed."""
        now = self.clock.now()
        async with self.db.sessions() as session:
            match = await session.get(ShakeMatch, token)
        gone = ProblemError("nearby-person-gone", "This person is no longer nearby.")
        if match is None or match.user_id != user_id or match.until <= now:
            raise gone
        if await self.messaging.blocked_either_way(user_id, [match.partner_id]):
            raise gone
        peer = (await self.identity.public_profiles([match.partner_id])).get(match.partner_id)
        if peer is None:
            raise gone
        status = await self.messaging.request_friend(user_id, peer.omo_id)
        async with self._transaction() as session:
            self._record(session, events.Greeted(user_id=user_id, greeted_id=match.partner_id))
        return status

    async def match(
        self, user_id: uuid.UUID, latitude: float, longitude: float
    ) -> tuple[str, uuid.UUID | None]:
        """The matching alone (what bench/shake.py drives): outcome and partner."""
        matcher = self.matcher
        assert matcher is not None
        cell = snap(latitude, longitude, SHAKE_RESOLUTION)
        shake_id = uuid.uuid4().hex
        at = await matcher.add(shake_id, user_id, cell)
        # Answered early when an earlier shake's settle time ends first and decides for us.
        await matcher.settle(shake_id, self.config.shake_settle)
        result = await matcher.decide(shake_id, user_id, at, neighbours(cell))
        if result is None:
            result = await matcher.wait(shake_id, self.config.shake_window)
        if result is None:
            result = await matcher.give_up(shake_id)
        if result.startswith(PAIRED):
            return "paired", uuid.UUID(result.removeprefix(PAIRED))
        return (AGAIN if result == AGAIN else ALONE), None

    async def _shaken(
        self,
        user_id: uuid.UUID,
        cell: str,
        outcome: str,
        *,
        partner_id: uuid.UUID | None = None,
        beacon: str | None = None,
        greet_token: str | None = None,
    ) -> None:
        async with self._transaction() as session:
            if greet_token is not None and partner_id is not None:
                session.add(
                    ShakeMatch(
                        token=greet_token,
                        user_id=user_id,
                        partner_id=partner_id,
                        until=self.clock.now() + self.config.shake_greet_for,
                    )
                )
            self._record(
                session,
                events.Shaken(
                    user_id=user_id,
                    cell=cell,
                    outcome=outcome,
                    partner_id=partner_id,
                    beacon=beacon,
                ),
            )

    async def _page(self, beacon: str) -> ShopPage | None:
        async with self.db.sessions() as session:
            row = await session.get(ShakeBinding, beacon)
        return None if row is None else ShopPage(row.beacon, row.title, row.kind, row.target)

    async def _owner(self, user_id: uuid.UUID, merchant_id: uuid.UUID) -> None:
        assert self.pay is not None
        merchant = await self.pay.merchant(user_id, merchant_id)
        if merchant.role != "owner":
            raise ProblemError("merchant-forbidden", "Only the owner can do this.")

    async def bind(
        self,
        user_id: uuid.UUID,
        merchant_id: uuid.UUID,
        beacon: str,
        *,
        title: str,
        kind: str,
        target: str,
    ) -> ShopPage:
        """The shop binds its place or beacon to a page: its current offer or a mini program."""
        await self._owner(user_id, merchant_id)
        if kind == "offer":
            campaign = None
            if self.coupons is not None:
                with contextlib.suppress(ProblemError, ValueError):
                    campaign = await self.coupons.campaign(uuid.UUID(target))
            if campaign is None or campaign.issuer != str(merchant_id):
                raise ProblemError("nearby-invalid-page", "Bind one of your own campaigns.")
        elif not (target.startswith("https://") or target.startswith("/mp/")):
            raise ProblemError("nearby-invalid-page", "A mini program page starts with /mp/.")
        async with self._transaction() as session:
            row = await session.get(ShakeBinding, beacon, with_for_update=True)
            if row is not None and row.merchant_id != merchant_id:
                raise ProblemError("nearby-beacon-taken", "Another shop uses this beacon.")
            if row is None:
                row = ShakeBinding(
                    beacon=beacon, merchant_id=merchant_id, created_at=self.clock.now()
                )
                session.add(row)
            row.title, row.kind, row.target = title, kind, target
        return ShopPage(beacon, title, kind, target)

    async def unbind(self, user_id: uuid.UUID, merchant_id: uuid.UUID, beacon: str) -> None:
        await self._owner(user_id, merchant_id)
        async with self._transaction() as session:
            await session.execute(
                delete(ShakeBinding).where(
                    ShakeBinding.beacon == beacon, ShakeBinding.merchant_id == merchant_id
                )
            )

    async def bindings(self, user_id: uuid.UUID, merchant_id: uuid.UUID) -> list[ShopPage]:
        assert self.pay is not None
        await self.pay.merchant(user_id, merchant_id)
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(ShakeBinding)
                .where(ShakeBinding.merchant_id == merchant_id)
                .order_by(ShakeBinding.beacon)
            )
            return [ShopPage(r.beacon, r.title, r.kind, r.target) for r in rows]
