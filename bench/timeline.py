"""Moments timeline: home page p50/p99 through the HTTP API vs one hand-written SQL query.

    python bench/timeline.py [--people 10000] [--friends 200] [--posts 100000]
                             [--requests 400] [--viewers 20] [--big-friends 5000]

Creates a fresh SQLite database in a temporary directory. `people` people (the first
`viewers` of them real, logged-in people; the rest bulk-inserted identity rows), each friends
with exactly `friends` others (a ring: i is friends with i±1..i±friends/2), and `posts` posts
by random authors over the last 180 days with mixed visibility (70 % all friends, 10 %
private, 10 % only 5 named friends, 10 % all except 5 named friends), likes and comments by
the author's friends, some authors with a 1-month or 6-month window, some "hide" switches —
all written with bulk SQL inserts as the setup, not through the API (one transaction, no
journal during the load, indexes built after it; the built file is kept under the temporary
directory, keyed by the parameters and the schema, and copied for later runs: --no-cache
builds afresh).

Measured in the same run, on the same database:
- OMO: `GET /api/v1/social/timeline?limit=20` (20 posts with their visible likes and
  comments, people's names) through the whole ASGI app in-process (httpx's ASGI transport:
  routing, auth, the service's visibility rules, serialisation; no socket);
- the limit: ONE hand-written SQL query that returns the same page — the viewer's friends
  minus blocks and switches, the window, each post's rule, the 20 newest, their visible likes
  and comments with names — run on the same engine;
- publishing: `POST /api/v1/social/posts` acknowledged, by a person with 10 friends, with
  `friends` friends and with `big-friends` friends.

Prints one JSON line: {"bench": "timeline", "figures": {...}, "ratios": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Uuid, bindparam, create_engine, insert, text

from omo import migrations
from omo.app import create_app
from omo.core.clock import SystemClock
from omo.core.config import Settings
from omo.core.db import UtcDateTime
from omo.identity.models import User
from omo.messaging.models import Contact
from omo.social.models import Comment, FriendSetting, Like, MomentsSetting, Post, PostAudience

PASSWORD = "bench password 2026"

LIMIT_SQL = text(
    """
WITH friends AS (
  SELECT c.peer_id AS id FROM messaging_contacts c
  WHERE c.user_id = :v AND c.status = 'friend'
    AND NOT EXISTS (SELECT 1 FROM messaging_blocks b
                    WHERE (b.user_id = :v AND b.blocked_id = c.peer_id)
                       OR (b.user_id = c.peer_id AND b.blocked_id = :v))
),
authors AS (
  SELECT f.id FROM friends f
  WHERE NOT EXISTS (SELECT 1 FROM social_friend_settings s
                    WHERE s.owner_id = f.id AND s.person_id = :v AND s.hide_my_moments)
    AND NOT EXISTS (SELECT 1 FROM social_friend_settings s
                    WHERE s.owner_id = :v AND s.person_id = f.id AND s.hide_their_moments)
  UNION ALL SELECT :v
),
page AS (
  SELECT p.id, p.author_id, p.text, p.created_at FROM social_posts p
  JOIN authors a ON p.author_id = a.id
  LEFT JOIN social_settings w ON w.user_id = p.author_id
  WHERE p.deleted_at IS NULL
    AND (p.author_id = :v OR w.window_days IS NULL
         OR p.created_at >= CASE w.window_days WHEN 3 THEN :c3 WHEN 30 THEN :c30 ELSE :c182 END)
    AND (p.author_id = :v OR p.visibility = 'friends'
         OR (p.visibility = 'only' AND EXISTS (SELECT 1 FROM social_post_audience pa
                                               WHERE pa.post_id = p.id AND pa.person_id = :v))
         OR (p.visibility = 'except'
             AND NOT EXISTS (SELECT 1 FROM social_post_audience pa
                             WHERE pa.post_id = p.id AND pa.person_id = :v)))
  ORDER BY p.created_at DESC, p.id DESC
  LIMIT 20
)
SELECT 'p' AS kind, page.id AS post_id, page.author_id AS who, u.display_name AS name,
       page.text AS body, page.created_at AS at
FROM page JOIN identity_users u ON u.id = page.author_id
UNION ALL
SELECT 'l', l.post_id, l.user_id, u.display_name, NULL, l.created_at
FROM social_likes l JOIN page ON page.id = l.post_id JOIN identity_users u ON u.id = l.user_id
WHERE l.user_id = :v OR l.user_id = page.author_id OR l.user_id IN (SELECT id FROM friends)
UNION ALL
SELECT 'c', c.post_id, c.author_id, u.display_name, c.text, c.created_at
FROM social_comments c JOIN page ON page.id = c.post_id JOIN identity_users u ON u.id = c.author_id
WHERE c.deleted_at IS NULL
  AND (c.author_id = :v OR c.author_id = page.author_id OR c.author_id IN (SELECT id FROM friends))
"""
).bindparams(
    bindparam("v", type_=Uuid),
    bindparam("c3", type_=UtcDateTime()),
    bindparam("c30", type_=UtcDateTime()),
    bindparam("c182", type_=UtcDateTime()),
)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ring_friends(i: int, n: int, friends: int) -> list[int]:
    half = friends // 2
    return [(i + k) % n for k in range(1, half + 1)] + [(i - k) % n for k in range(1, half + 1)]


# The tables the bulk load fills; their secondary indexes are dropped during the load and
# built once at its end (cheaper than keeping them up to date row by row).
LOADED = (
    "identity_users",
    "messaging_contacts",
    "social_posts",
    "social_post_audience",
    "social_likes",
    "social_comments",
    "social_settings",
    "social_friend_settings",
)


def bulk_load(db_file: Path, viewers: list[uuid.UUID], args: argparse.Namespace) -> None:
    """The bench's own data, written straight into the SQLite file in ONE transaction.

    Only for this setup: the journal and fsync are off while it runs (a crash leaves a
    useless bench file, nothing else), indexes are built after the rows, and the 20M contact
    rows of the ring are generated by SQLite itself (INSERT ... SELECT over a people table
    and an offsets table). Rows go through SQLAlchemy's types, so they are stored exactly as
    the product stores them. The measured runs later use the product's engine and settings.
    """
    rng = random.Random(args.seed)
    engine = create_engine(f"sqlite:///{db_file}")
    dialect = engine.dialect
    stamp = UtcDateTime().bind_processor(dialect)
    key = Uuid().bind_processor(dialect)
    assert stamp is not None
    assert key is not None
    now = SystemClock().now()
    started = time.perf_counter()
    small, big = viewers[args.viewers], viewers[args.viewers + 1]
    # Sorted ids: the ring's rows then reach the (user_id, peer_id) key in its own order.
    people = viewers[: args.viewers] + sorted(
        (uuid.uuid4() for _ in range(args.people - args.viewers)), key=lambda u: u.hex
    )
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=OFF")
        connection.exec_driver_sql("PRAGMA synchronous=OFF")
        connection.exec_driver_sql("PRAGMA cache_size=-1000000")  # 1 GB of page cache
        connection.exec_driver_sql("PRAGMA temp_store=MEMORY")
        connection.commit()
        with connection.begin():
            indexes = [
                (name, sql)
                for name, sql, table in connection.exec_driver_sql(
                    "SELECT name, sql, tbl_name FROM sqlite_master"
                    " WHERE type = 'index' AND sql IS NOT NULL"
                )
                if table in LOADED
            ]
            for name, _sql in indexes:
                connection.exec_driver_sql(f'DROP INDEX "{name}"')
            connection.execute(
                insert(User),
                [
                    {
                        "id": people[n],
                        "phone_e164": f"+3934099{n:07d}",
                        "password_hash": "-",
                        "phone_verified_at": now,
                        "display_name": f"Person {n}",
                        "region": "IT",
                        "locale": None,
                        "time_zone": None,
                        "omo_id": f"bench_p{n}",
                        "omo_id_changed_at": None,
                        "avatar_id": None,
                        "created_at": now,
                    }
                    for n in range(args.viewers, args.people)
                ],
            )
            connection.exec_driver_sql("CREATE TEMP TABLE bench_people (n INTEGER PRIMARY KEY, id)")
            connection.exec_driver_sql(
                "INSERT INTO bench_people VALUES (?, ?)",
                [(n, key(person)) for n, person in enumerate(people)],
            )
            connection.exec_driver_sql("CREATE TEMP TABLE bench_offsets (k INTEGER PRIMARY KEY)")
            half = args.friends // 2
            connection.exec_driver_sql(
                "INSERT INTO bench_offsets VALUES (?)",
                [(k,) for k in range(-half, half + 1) if k],
            )
            # The ring: i is friends with i±1..i±friends/2 (as ring_friends says).
            connection.exec_driver_sql(
                "INSERT INTO messaging_contacts (user_id, peer_id, status, created_at)"
                " SELECT p.id, q.id, 'friend', ? FROM bench_people p CROSS JOIN bench_offsets o"
                " JOIN bench_people q ON q.n = ((p.n + o.k) % ? + ?) % ?",
                (stamp(now), args.people, args.people, args.people),
            )
            contacts = []
            for who, count in ((small, 10), (big, args.big_friends)):
                for j in rng.sample(range(args.people), min(count, args.people)):
                    for a, b in ((who, people[j]), (people[j], who)):
                        contacts.append(
                            {"user_id": a, "peer_id": b, "status": "friend", "created_at": now}
                        )
            connection.execute(insert(Contact), contacts)
            print(f"contacts in {time.perf_counter() - started:.0f}s", file=sys.stderr)
            posts, audience, likes, comments = [], [], [], []
            for n in range(args.posts):
                author = rng.randrange(args.people)
                roll = rng.random()
                visibility = (
                    "friends"
                    if roll < 0.7
                    else "private"
                    if roll < 0.8
                    else "only"
                    if roll < 0.9
                    else "except"
                )
                post_id = uuid.uuid4()
                friends = ring_friends(author, args.people, args.friends)
                posts.append(
                    {
                        "id": post_id,
                        "author_id": people[author],
                        "kind": "text",
                        "text": f"post {n}",
                        "card": None,
                        "place": None,
                        "visibility": visibility,
                        "created_at": now - timedelta(seconds=rng.randrange(180 * 86400)),
                        "deleted_at": None,
                    }
                )
                if visibility in ("only", "except"):
                    audience += [
                        {"post_id": post_id, "person_id": people[j]} for j in rng.sample(friends, 5)
                    ]
                if rng.random() < 0.3:
                    likes += [
                        {"post_id": post_id, "user_id": people[j], "created_at": now}
                        for j in rng.sample(friends, rng.randint(1, 3))
                    ]
                if rng.random() < 0.2:
                    comments += [
                        {
                            "id": uuid.uuid4(),
                            "post_id": post_id,
                            "author_id": people[j],
                            "reply_to_id": None,
                            "reply_to_user": None,
                            "text": "nice",
                            "created_at": now,
                            "deleted_at": None,
                        }
                        for j in rng.sample(friends, rng.randint(1, 2))
                    ]
            for table, rows in (
                (Post, posts),
                (PostAudience, audience),
                (Like, likes),
                (Comment, comments),
            ):
                connection.execute(insert(table), rows)
            windows = [
                {"user_id": people[j], "window_days": rng.choice([30, 182])}
                for j in rng.sample(range(args.people), args.people // 10)
            ]
            connection.execute(insert(MomentsSetting), windows)
            switches = []
            for j in rng.sample(range(args.people), args.people // 20):
                peer = rng.choice(ring_friends(j, args.people, args.friends))
                switches.append(
                    {
                        "owner_id": people[j],
                        "person_id": people[peer],
                        "remark": "",
                        "hide_my_moments": rng.random() < 0.5,
                        "hide_their_moments": rng.random() < 0.5,
                    }
                )
            connection.execute(insert(FriendSetting), switches)
            print(f"rows in {time.perf_counter() - started:.0f}s", file=sys.stderr)
            for _name, sql in indexes:
                connection.exec_driver_sql(sql)
            connection.exec_driver_sql("DROP TABLE bench_people")
            connection.exec_driver_sql("DROP TABLE bench_offsets")
        connection.exec_driver_sql("ANALYZE")
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")  # what the product runs on
        connection.commit()
    engine.dispose()
    print(f"loaded in {time.perf_counter() - started:.0f}s", file=sys.stderr)


def cache_file(args: argparse.Namespace) -> Path:
    """Where a built database is kept for later runs: keyed by the parameters and the schema."""
    versions = sorted(p.name for p in (Path(migrations.__file__).parent / "versions").glob("*.py"))
    shape = [args.people, args.friends, args.posts, args.viewers, args.big_friends, args.seed]
    digest = hashlib.sha256(json.dumps([shape, versions]).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "omo-bench-timeline" / f"{digest}.sqlite3"


def viewer_phone(n: int) -> str:
    return f"+3934077{n:05d}"


async def setup(app: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The real, logged-in people (viewers and the two publishers): created if new."""
    identity = app.state.identity
    ids: list[uuid.UUID] = []
    tokens: list[str] = []
    for n in range(args.viewers + 2):  # + the small and the big publisher
        phone = viewer_phone(n)
        ids.append(await identity.ensure_person(phone, PASSWORD, f"Viewer {n}", f"bench_v{n}"))
        issued = await identity.log_in(
            phone,
            PASSWORD,
            device_name="bench",
            kind="app",
            user_agent="bench",
            client_address=f"10.9.{n // 200}.{n % 200}",
        )
        tokens.append(issued.token)
    return {"ids": ids, "tokens": tokens, "small": args.viewers, "big": args.viewers + 1}


async def measure(app: Any, args: argparse.Namespace, world: dict[str, Any]) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    viewers = list(range(args.viewers))
    now = SystemClock().now()
    cutoffs = {f"c{d}": now - timedelta(days=d) for d in (3, 30, 182)}
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def api_page(viewer: int) -> list[str]:
            auth = {"Authorization": f"Bearer {world['tokens'][viewer]}"}
            response = await client.get("/api/v1/social/timeline?limit=20", headers=auth)
            assert response.status_code == 200, response.text
            return [p["id"] for p in response.json()["posts"]]

        async def sql_page(viewer: int) -> list[str]:
            async with app.state.db.engine.connect() as connection:
                rows = (
                    await connection.execute(LIMIT_SQL, {"v": world["ids"][viewer], **cutoffs})
                ).all()
            posts = sorted(((r.at, r.post_id) for r in rows if r.kind == "p"), reverse=True)
            return [str(uuid.UUID(str(p))) for _at, p in posts]

        # Same page both ways (a check that the limit does the same work), then warm up.
        equal = [await api_page(v) == await sql_page(v) for v in viewers]
        figures["pages_equal"] = all(equal)
        figures["posts_per_page"] = statistics.mean([len(await api_page(v)) for v in viewers])
        omo: list[float] = []
        bare: list[float] = []
        omo_cpu: list[float] = []
        bare_cpu: list[float] = []
        for round_ in range(args.requests):
            viewer = viewers[round_ % len(viewers)]
            for work, samples, cpu in ((api_page, omo, omo_cpu), (sql_page, bare, bare_cpu)):
                # Everything runs on this thread (in-process ASGI, SQLite on the loop thread),
                # so thread CPU time is the request's own work, without other processes' load.
                began, began_cpu = time.perf_counter(), time.thread_time()
                await work(viewer)
                samples.append((time.perf_counter() - began) * 1000)
                cpu.append((time.thread_time() - began_cpu) * 1000)
        figures |= {
            "timeline_api_p50_ms": round(pct(omo, 0.5), 2),
            "timeline_api_p99_ms": round(pct(omo, 0.99), 2),
            "timeline_api_per_s": round(1000 * len(omo) / sum(omo)),
            "bare_sql_p50_ms": round(pct(bare, 0.5), 2),
            "bare_sql_p99_ms": round(pct(bare, 0.99), 2),
            "bare_sql_per_s": round(1000 * len(bare) / sum(bare)),
            "timeline_api_cpu_p50_ms": round(pct(omo_cpu, 0.5), 2),
            "timeline_api_cpu_p99_ms": round(pct(omo_cpu, 0.99), 2),
            "bare_sql_cpu_p50_ms": round(pct(bare_cpu, 0.5), 2),
            "bare_sql_cpu_p99_ms": round(pct(bare_cpu, 0.99), 2),
            "load_average_1min": round(os.getloadavg()[0], 1),
        }
        for name, who, friends in (
            ("10", world["small"], 10),
            (str(args.friends), 0, args.friends),
            (str(args.big_friends), world["big"], args.big_friends),
        ):
            auth = {"Authorization": f"Bearer {world['tokens'][who]}"}
            samples = []
            for n in range(args.publishes):
                began = time.perf_counter()
                response = await client.post(
                    "/api/v1/social/posts", json={"text": f"bench {n}"}, headers=auth
                )
                samples.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 201, response.text
            figures[f"publish_p50_ms_{name}_friends"] = round(pct(samples, 0.5), 2)
            figures[f"publish_p99_ms_{name}_friends"] = round(pct(samples, 0.99), 2)
            del friends
    return figures


async def main(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="omo-bench-timeline-"))
    db_file = folder / "omo.sqlite3"
    url = f"sqlite+aiosqlite:///{db_file}"
    settings = Settings(data_dir=folder, database_url=url, redis_url=None, secret_key="bench")  # type: ignore[call-arg]
    cached = cache_file(args)
    started = time.perf_counter()
    if args.cache and cached.exists():
        shutil.copyfile(cached, db_file)  # the runs write (sessions, publishes): a copy
        print(f"database from {cached}", file=sys.stderr)
    else:
        migrations.upgrade(url)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            world = await setup(app, args)
        bulk_load(db_file, world["ids"], args)
        if args.cache:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".partial")
            shutil.copyfile(db_file, partial)
            partial.rename(cached)
    # The copied (or just built) file is gigabytes of dirty pages in the OS cache: flushed now,
    # not by the fsync of the first WAL checkpoint, which would land in one measured publish
    # (it made publish p99 ~1.1 s in the runs of 2026-12-03 night).
    with db_file.open("rb+") as written:
        os.fsync(written.fileno())
    setup_seconds = time.perf_counter() - started
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        world = await setup(app, args)
        figures = await measure(app, args, world)
    shutil.rmtree(folder, ignore_errors=True)
    figures["setup_s"] = round(setup_seconds, 1)
    figures |= {
        "backend": "sqlite",
        "people": args.people,
        "friends": args.friends,
        "posts": args.posts,
        "requests": args.requests,
    }
    ratios = {
        "omo_vs_bare_sql_rate": round(figures["timeline_api_per_s"] / figures["bare_sql_per_s"], 2),
        "omo_p99_vs_10ms_goal": round(10 / figures["timeline_api_p99_ms"], 2),
        "omo_cpu_p99_vs_10ms_goal": round(10 / figures["timeline_api_cpu_p99_ms"], 2),
        "publish_big_over_small_p50": round(
            figures[f"publish_p50_ms_{args.big_friends}_friends"]
            / figures["publish_p50_ms_10_friends"],
            2,
        ),
    }
    return {"bench": "timeline", "figures": figures, "ratios": ratios}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--friends", type=int, default=200)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--big-friends", type=int, default=5000)
    parser.add_argument("--publishes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="build the database afresh and do not keep it under the temporary directory",
    )
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
