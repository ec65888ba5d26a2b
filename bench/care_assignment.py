"""Care auto-assignment: latency from a customer's message to its assignment.

    python bench/care_assignment.py [--agents 200] [--open 5000] [--messages 500]
                                    [--database-url postgresql+asyncpg://...] [--drive]

Creates a fresh database (SQLite in a temporary directory unless --database-url is given),
one brand with one account, a team of `agents` agents (capacity 40 each) already carrying
`open` open conversations between them, and `messages` followers — all written in bulk as
the benchmark's setup. Then each follower writes once, through `AccountService.user_send`
(the real path: message row, MessageReceived in the outbox, commit), and care handles it as
in service: its own loop, woken by accounts' announcement on the broker, reads the outbox
(a new care conversation, the least-loaded agent's load taken with one conditional UPDATE,
the cursor moved, one commit) and sends the assignee a realtime frame, which the benchmark
waits for. `--drive` stops care's loop and runs its consumer by hand after each message.

Figures: p50/p99 of `message_to_assignment_ms` (user_send started → the assignee's frame
received), of `assign_ms` (the part after user_send returned) and of the process's CPU time
for the whole message. The bare limit in the same run is the least SQL an assignment needs:
SELECT the least-loaded agent, UPDATE their load, INSERT the conversation, one commit.

Prints one JSON line: {"bench": "care_assignment", "figures": {...}, "ratios": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from omo import migrations
from omo.accounts.models import Follow
from omo.accounts.service import AccountService
from omo.app import create_app
from omo.care.models import Agent, Conversation, Team, TeamAccount
from omo.care.service import CareService
from omo.core.clock import SystemClock
from omo.core.config import Settings
from omo.core.ids import new_id
from omo.messaging.service import user_channel

GOAL_P99_MS = 20.0
CAPACITY = 40


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def setup(
    care: CareService, account_id: uuid.UUID, organisation_id: uuid.UUID, args: argparse.Namespace
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    now = SystemClock().now()
    team_id = new_id()
    agents = [new_id() for _ in range(args.agents)]
    customers = [new_id() for _ in range(args.messages)]
    async with care.db.engine.begin() as connection:
        await connection.execute(
            insert(Team),
            [
                {
                    "id": team_id,
                    "organisation_id": organisation_id,
                    "name": "Bench",
                    "strategy": "least_loaded",
                    "created_at": now,
                }
            ],
        )
        await connection.execute(
            insert(TeamAccount), [{"team_id": team_id, "account_id": account_id}]
        )
        per_agent = args.open // args.agents
        await connection.execute(
            insert(Agent),
            [
                {
                    "team_id": team_id,
                    "user_id": a,
                    "capacity": CAPACITY,
                    "load": per_agent,
                    "last_assigned_at": now,
                }
                for a in agents
            ],
        )
        rows = [
            {
                "id": new_id(),
                "organisation_id": organisation_id,
                "account_id": account_id,
                "openid": f"obench{n:08d}",
                "status": "open",
                "held_by_bot": False,
                "team_id": team_id,
                "assignee_id": agents[n % args.agents],
                "labels": [],
                "preview": "already open",
                "opened_at": now,
                "last_message_at": now,
                "first_response_breached": False,
                "resolution_breached": False,
                "csat_comment": "",
            }
            for n in range(args.open)
        ]
        for start in range(0, len(rows), 5000):
            await connection.execute(insert(Conversation), rows[start : start + 5000])
        await connection.execute(
            insert(Follow),
            [
                {
                    "account_id": account_id,
                    "user_id": c,
                    "openid": f"onew{n:08d}",
                    "following": True,
                    "followed_at": now,
                    "scene": "",
                    "last_interaction_at": now,
                }
                for n, c in enumerate(customers)
            ],
        )
    return customers, agents


async def bare_ms(care: CareService, account_id: uuid.UUID, runs: int) -> list[float]:
    samples = []
    for n in range(runs):
        started = time.perf_counter()
        async with care.db.transaction() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT team_id, user_id FROM care_agents WHERE load < capacity "
                        "ORDER BY load, last_assigned_at LIMIT 1"
                    )
                )
            ).first()
            assert row is not None
            await session.execute(
                text(
                    "UPDATE care_agents SET load = load + 1 "
                    "WHERE team_id = :t AND user_id = :u AND load < capacity"
                ),
                {"t": row[0], "u": row[1]},
            )
            session.add(
                Conversation(
                    id=new_id(),
                    organisation_id=account_id,
                    account_id=account_id,
                    openid=f"obare{n}",
                    status="resolved",
                    held_by_bot=False,
                    team_id=None,
                    assignee_id=None,
                    labels=[],
                    preview="",
                    opened_at=SystemClock().now(),
                    last_message_at=SystemClock().now(),
                    first_response_breached=False,
                    resolution_breached=False,
                    csat_comment="",
                )
            )
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def main(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="omo-bench-care-"))
    url = args.database_url or f"sqlite+aiosqlite:///{folder / 'omo.sqlite3'}"
    migrations.upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, redis_url=None, secret_key="bench")  # type: ignore[call-arg]
    app = create_app(settings)
    figures: dict[str, Any] = {"backend": "sqlite" if url.startswith("sqlite") else "postgresql"}
    async with app.router.lifespan_context(app):
        accounts: AccountService = app.state.accounts
        care: CareService = app.state.care
        if args.drive:
            await care.stop()  # drive the consumer by hand (the figure leaves out any wake-up)
        owner = await app.state.identity.ensure_person("+393400000001", "bench password 2026", "B")
        org = await accounts.create_organisation(owner, "Bench brand")
        created = await accounts.create_account(owner, org.id, kind="service", name="Bench")
        account_id = created.account.id
        started = time.perf_counter()
        customers, agents = await setup(care, account_id, org.id, args)
        print(f"set up in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        await care.run_once()  # the consumer's cursor, past the setup's events
        assign: list[float] = []
        end_to_end: list[float] = []
        cpu_ms: list[float] = []  # the process's CPU time for the whole message, all tasks
        async with app.state.broker.subscribe(*(user_channel(a) for a in agents)) as frames:
            for n, customer in enumerate(customers):
                started, cpu = time.perf_counter(), time.thread_time()
                await accounts.user_send(customer, account_id, {"text": f"help {n}"})
                sent = time.perf_counter()
                if args.drive:
                    assert await care.run_once() >= 1
                while True:  # the assignee's realtime frame: the assignment is committed
                    got = await frames.get(5.0)
                    assert got is not None, "no assignment within 5 s"
                    if got[1].get("event") == "assigned":
                        break
                done = time.perf_counter()
                cpu_ms.append((time.thread_time() - cpu) * 1000)
                assign.append((done - sent) * 1000)
                end_to_end.append((done - started) * 1000)
        async with care.db.sessions() as session:
            unassigned = await session.scalar(
                text(
                    "SELECT count(*) FROM care_conversations "
                    "WHERE assignee_id IS NULL AND status = 'open'"
                )
            )
        bare = await bare_ms(care, account_id, min(args.messages, 300))
    figures |= {
        "agents": args.agents,
        "open_conversations": args.open,
        "messages": args.messages,
        "mode": "driven by hand" if args.drive else "care's own loop, woken by the broker",
        "assign_ms_p50": p(assign, 0.5),
        "assign_ms_p99": p(assign, 0.99),
        "message_to_assignment_ms_p50": p(end_to_end, 0.5),
        "message_to_assignment_ms_p99": p(end_to_end, 0.99),
        "message_to_assignment_cpu_ms_p50": p(cpu_ms, 0.5),
        "message_to_assignment_cpu_ms_p99": p(cpu_ms, 0.99),
        "bare_sql_assignment_ms_p50": p(bare, 0.5),
        "bare_sql_assignment_ms_p99": p(bare, 0.99),
        "left_unassigned": unassigned,
        "mean_assign_ms": round(statistics.fmean(assign), 3),
    }
    ratios = {
        "omo_vs_goal_p99": round(GOAL_P99_MS / figures["message_to_assignment_ms_p99"], 2),
        "omo_vs_bare_sql_p99": round(
            figures["bare_sql_assignment_ms_p99"] / figures["assign_ms_p99"], 2
        ),
    }
    return {"bench": "care_assignment", "figures": figures, "ratios": ratios}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--open", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--drive",
        action="store_true",
        help="stop care's own loop and run its consumer by hand after each message",
    )
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
