"""Property-based: what the timeline, a post page, a profile page and the API return equals
what the rules of docs/SOCIAL.md allow — nothing more, nothing less.

Each example draws a friend graph of five people, labels, posts with their own rules and ages,
likes and comments, then changes at read time (unfriending, blocks, the two Moments switches,
windows, label members), and compares every answer with an oracle written from the rules
alone (not from the service's code).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from omo.app import create_app
from omo.core.clock import ManualClock
from omo.core.config import Settings
from omo.core.errors import ProblemError
from omo.messaging.models import Block, Contact
from omo.social import models as social_models
from omo.social.service import Draft, SocialService

T = TypeVar("T")
N = 5
AGES = (0, 2, 10, 40, 200)  # days; never on a window's edge (3, 30, 182)
WINDOW_DAYS = {"3d": 3, "1m": 30, "6m": 182, "all": None}
START = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class Harness:
    app: Any
    service: SocialService
    ids: list[uuid.UUID]
    omo_ids: list[str]
    tokens: list[str]
    clock: ManualClock
    loop: asyncio.AbstractEventLoop

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(120)


@pytest.fixture
def harness(settings: Settings) -> Iterator[Harness]:
    """One app on a loop of its own, so hypothesis (synchronous) can drive many examples."""
    clock = ManualClock(START)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = create_app(settings, clock)
    started, stopping = threading.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stopping.wait()

    async def people() -> tuple[list[uuid.UUID], list[str], list[str]]:
        ids, omo_ids, tokens = [], [], []
        for n in range(N):
            omo_id = f"prop_mo_{n}"
            ids.append(
                await app.state.identity.ensure_person(
                    f"+39340666000{n}", "a long password", omo_id, omo_id
                )
            )
            issued = await app.state.identity.log_in(
                f"+39340666000{n}",
                "a long password",
                device_name="t",
                kind="app",
                user_agent="pytest",
                client_address=f"198.51.100.{10 + n}",
            )
            omo_ids.append(omo_id)
            tokens.append(issued.token)
        return ids, omo_ids, tokens

    running = asyncio.run_coroutine_threadsafe(lifespan(), loop)
    started.wait(60)
    try:
        ids, omo_ids, tokens = asyncio.run_coroutine_threadsafe(people(), loop).result(120)
        yield Harness(app, app.state.social, ids, omo_ids, tokens, clock, loop)
    finally:
        loop.call_soon_threadsafe(stopping.set)
        running.result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


pairs = st.sets(
    st.tuples(st.integers(0, N - 1), st.integers(0, N - 1)).filter(lambda p: p[0] != p[1])
)
ALL_PAIRS = {(a, b) for a in range(N) for b in range(N) if a < b}
people_sets = st.frozensets(st.integers(0, N - 1), max_size=N)
post_spec = st.tuples(
    st.integers(0, N - 1),  # author
    st.sampled_from(["friends", "private", "only", "except"]),
    people_sets,  # named people (kept to the author's friends)
    st.booleans(),  # also name the author's label
    st.sampled_from(AGES),
)


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    return {
        # Dense graphs: every pair is friends unless drawn apart.
        "friends": ALL_PAIRS - {tuple(sorted(p)) for p in draw(pairs)},
        "labels": [draw(people_sets) for _ in range(N)],
        "posts": draw(st.lists(post_spec, min_size=3, max_size=8)),
        "actions": draw(
            st.lists(
                st.tuples(st.integers(0, N - 1), st.integers(0, 7), st.booleans()), max_size=12
            )
        ),  # (who, post index, like or comment)
        "unfriend": {tuple(sorted(p)) for p in draw(pairs)},
        "blocks": draw(pairs),
        "hide_my": draw(pairs),
        "hide_their": draw(pairs),
        "windows": [draw(st.sampled_from(list(WINDOW_DAYS))) for _ in range(N)],
        "labels_after": [draw(people_sets) for _ in range(N)],
    }


@dataclass
class Oracle:
    friends: set[tuple[int, int]]
    blocks: set[tuple[int, int]]
    hide_my: set[tuple[int, int]]  # (author, viewer): author hides their Moments from viewer
    hide_their: set[tuple[int, int]]  # (viewer, author): viewer hides author's Moments
    windows: list[str]

    def are_friends(self, a: int, b: int) -> bool:
        return tuple(sorted((a, b))) in self.friends

    def blocked(self, a: int, b: int) -> bool:
        return (a, b) in self.blocks or (b, a) in self.blocks

    def sees_post(self, viewer: int, post: dict[str, Any]) -> bool:
        author = post["author"]
        if viewer == author:
            return True
        days = WINDOW_DAYS[self.windows[author]]
        rule = {
            "friends": True,
            "private": False,
            "only": viewer in post["audience"],
            "except": viewer not in post["audience"],
        }[post["visibility"]]
        return (
            self.are_friends(viewer, author)
            and not self.blocked(viewer, author)
            and (author, viewer) not in self.hide_my
            and (viewer, author) not in self.hide_their
            and (days is None or post["age"] <= days)
            and rule
        )

    def sees_activity(self, viewer: int, post: dict[str, Any], actor: int) -> bool:
        return actor in (viewer, post["author"]) or (
            self.are_friends(viewer, actor) and not self.blocked(viewer, actor)
        )


async def _reset(h: Harness) -> None:
    async with h.app.state.db.transaction() as session:
        for model in (
            social_models.Notification,
            social_models.Like,
            social_models.Comment,
            social_models.PostMedia,
            social_models.PostAudience,
            social_models.Post,
            social_models.LabelMember,
            social_models.Label,
            social_models.FriendSetting,
            social_models.MomentsSetting,
        ):
            await session.execute(delete(model))
        await session.execute(delete(Contact))
        await session.execute(delete(Block))


async def _set_friends(h: Harness, friends: set[tuple[int, int]]) -> None:
    async with h.app.state.db.transaction() as session:
        await session.execute(delete(Contact))
        for a, b in friends:
            for x, y in ((a, b), (b, a)):
                session.add(
                    Contact(user_id=h.ids[x], peer_id=h.ids[y], status="friend", created_at=START)
                )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_every_answer_equals_what_the_rules_allow(harness: Harness, world: dict[str, Any]) -> None:
    h, service = harness, harness.service
    now = START  # sessions were issued at START; posts are published before it
    oracle = Oracle(set(world["friends"]), set(), set(), set(), ["all"] * N)

    async def scenario() -> dict[str, Any]:
        await _reset(h)
        await _set_friends(h, world["friends"])
        labels: list[uuid.UUID] = []
        for owner in range(N):
            members = [h.omo_ids[m] for m in world["labels"][owner] if oracle.are_friends(owner, m)]
            labels.append((await service.create_label(h.ids[owner], "label", members)).id)
        posts: list[dict[str, Any]] = []
        for author, visibility, named, with_label, age in sorted(
            world["posts"], key=lambda spec: -spec[4]
        ):
            h.clock.set(now - timedelta(days=age))
            people = [p for p in named if oracle.are_friends(author, p)]
            label_members = {m for m in world["labels"][author] if oracle.are_friends(author, m)}
            if visibility in ("only", "except") and not people and not with_label:
                visibility = "friends"
            named_ids = (
                tuple(h.omo_ids[p] for p in people) if visibility in ("only", "except") else ()
            )
            use_label = with_label and visibility in ("only", "except")
            view = await service.publish(
                h.ids[author],
                Draft(
                    text=f"post {len(posts)}",
                    visibility=visibility,
                    people=named_ids,
                    labels=(labels[author],) if use_label else (),
                ),
            )
            audience = set(people) | (label_members if use_label else set())
            posts.append(
                {
                    "id": view.id,
                    "author": author,
                    "visibility": visibility,
                    "audience": audience,
                    "age": age,
                    "created_at": view.created_at,
                    "likes": set(),
                    "comments": set(),
                }
            )
        h.clock.set(now)
        # Likes and comments: accepted exactly when the actor sees the post.
        for who, index, is_like in world["actions"]:
            post = posts[index % len(posts)]
            allowed = oracle.sees_post(who, post)
            try:
                if is_like:
                    await service.like(h.ids[who], post["id"])
                    post["likes"].add(who)
                else:
                    await service.comment(h.ids[who], post["id"], f"by {who}")
                    post["comments"].add(who)
                accepted = True
            except ProblemError:
                accepted = False
            assert accepted == allowed, f"{who} on post {index}: accepted {accepted}"
        # Read-time changes.
        oracle.friends -= world["unfriend"]
        await _set_friends(h, oracle.friends)
        async with h.app.state.db.transaction() as session:
            for a, b in world["blocks"]:
                session.add(Block(user_id=h.ids[a], blocked_id=h.ids[b], created_at=now))
        oracle.blocks = set(world["blocks"])
        for a, b in world["hide_my"]:
            if oracle.are_friends(a, b):
                await service.set_friend(h.ids[a], h.omo_ids[b], hide_my_moments=True)
                oracle.hide_my.add((a, b))
        for a, b in world["hide_their"]:
            if oracle.are_friends(a, b):
                await service.set_friend(h.ids[a], h.omo_ids[b], hide_their_moments=True)
                oracle.hide_their.add((a, b))
        for person, window in enumerate(world["windows"]):
            await service.set_window(h.ids[person], window)
        oracle.windows = list(world["windows"])
        for owner in range(N):
            members = [
                h.omo_ids[m] for m in world["labels_after"][owner] if oracle.are_friends(owner, m)
            ]
            await service.update_label(h.ids[owner], labels[owner], members=members)
        # What everyone gets, through the service and through the HTTP API.
        answers: dict[str, Any] = {"posts": posts, "timeline": {}, "api": {}, "pages": {}}
        transport = httpx.ASGITransport(app=h.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omo.test") as client:
            for viewer in range(N):
                auth = {"Authorization": f"Bearer {h.tokens[viewer]}"}
                page = await service.timeline(h.ids[viewer], limit=50)
                answers["timeline"][viewer] = [p.id for p in page.posts]
                listed = await client.get("/api/v1/social/timeline?limit=50", headers=auth)
                assert listed.status_code == 200, listed.text
                answers["api"][viewer] = [uuid.UUID(p["id"]) for p in listed.json()["posts"]]
                for post in posts:
                    got = await client.get(f"/api/v1/social/posts/{post['id']}", headers=auth)
                    answers["pages"][(viewer, post["id"])] = (
                        got.json() if got.status_code == 200 else None
                    )
                for author in range(N):
                    profile = await service.profile_posts(h.ids[viewer], h.omo_ids[author])
                    answers["timeline"][(viewer, author)] = [p.id for p in profile.posts]
        return answers

    answers = h.run(scenario())
    posts = answers["posts"]
    newest_first = sorted(posts, key=lambda p: (p["created_at"], p["id"]), reverse=True)
    for viewer in range(N):
        expected = [p["id"] for p in newest_first if oracle.sees_post(viewer, p)]
        assert answers["timeline"][viewer] == expected
        assert answers["api"][viewer] == expected
        for author in range(N):
            mine = [
                p["id"]
                for p in newest_first
                if p["author"] == author and oracle.sees_post(viewer, p)
            ]
            assert answers["timeline"][(viewer, author)] == mine
        for post in posts:
            page = answers["pages"][(viewer, post["id"])]
            assert (page is not None) == oracle.sees_post(viewer, post)
            if page is None:
                continue
            likers = {h.omo_ids.index(p["omo_id"]) for p in page["likes"]}
            commenters = {h.omo_ids.index(c["author"]["omo_id"]) for c in page["comments"]}
            assert likers == {a for a in post["likes"] if oracle.sees_activity(viewer, post, a)}
            assert commenters == {
                a for a in post["comments"] if oracle.sees_activity(viewer, post, a)
            }
