"""Property-based: ordering and idempotency hold under interleaved sends, retries and resyncs.

Each example runs rounds of concurrent sends (some of them retries of earlier client ids,
by any of three people) against the real service and database, then checks the log.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omo.app import create_app
from omo.core.clock import ManualClock
from omo.core.config import Settings
from omo.messaging.service import Draft, MessagingService, Sent

T = TypeVar("T")
PEOPLE = ("prop_ana", "prop_bo", "prop_cai")


@dataclass
class Harness:
    service: MessagingService
    user_ids: list[uuid.UUID]
    loop: asyncio.AbstractEventLoop

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(120)


@pytest.fixture
def harness(settings: Settings, clock: ManualClock) -> Iterator[Harness]:
    """One app on a loop of its own, so hypothesis (synchronous) can drive many examples."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = create_app(settings, clock)
    started, stopping = threading.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stopping.wait()

    def run(work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, loop).result(120)

    async def people() -> list[uuid.UUID]:
        ids = []
        for n, omo_id in enumerate(PEOPLE):
            ids.append(
                await app.state.identity.ensure_person(
                    f"+39340555000{n}", "a long password", omo_id, omo_id
                )
            )
        service: MessagingService = app.state.messaging
        for other in PEOPLE[1:]:
            await service.request_friend(ids[0], other)
            await service.accept_friend(ids[PEOPLE.index(other)], PEOPLE[0])
        return ids

    running = asyncio.run_coroutine_threadsafe(lifespan(), loop)
    started.wait(60)
    try:
        yield Harness(app.state.messaging, run(people()), loop)
    finally:
        loop.call_soon_threadsafe(stopping.set)
        running.result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


send_op = st.tuples(st.integers(0, 2), st.integers(0, 7))  # (sender, client id)
rounds_strategy = st.lists(st.lists(send_op, min_size=1, max_size=8), min_size=1, max_size=5)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rounds=rounds_strategy, cursor=st.integers(0, 40))
def test_sends_and_retries_make_one_gapless_ordered_log(
    harness: Harness, rounds: list[list[tuple[int, int]]], cursor: int
) -> None:
    service, ids = harness.service, harness.user_ids

    async def scenario() -> tuple[list[list[Sent]], Any, Any]:
        group = await service.create_group(ids[0], "props", list(PEOPLE[1:]))
        results = []
        for sends in rounds:
            batch = [
                service.send(
                    ids[who],
                    Draft(conversation_id=group, client_id=f"c{cid}", text=f"{who}:{cid}"),
                )
                for who, cid in sends
            ]
            results.append(list(await asyncio.gather(*batch)))
        everything = await service.history(ids[1], group, after=0, limit=200)
        gap = await service.history(ids[2], group, after=cursor, limit=200)
        return results, everything, gap

    results, everything, gap = harness.run(scenario())
    chat = [m for m in everything.messages if m.kind == "text"]
    seqs = [m.seq for m in everything.messages]
    # One gapless, strictly increasing log (seq 1 is the group's creation notice).
    assert seqs == list(range(1, len(seqs) + 1))
    # Every (sender, client id) is stored exactly once, with the first send's content.
    keys = [(m.sender_id, m.client_id) for m in chat]
    assert len(keys) == len(set(keys))
    expected = {(ids[who], f"c{cid}") for sends in rounds for who, cid in sends}
    assert set(keys) == expected
    for m in chat:
        who = ids.index(m.sender_id)
        assert m.text == f"{who}:{m.client_id[1:]}"
    # Every retry was answered with the stored original.
    by_key = {(m.sender_id, m.client_id): m.seq for m in chat}
    for sent_round in results:
        for sent in sent_round:
            assert sent.message.seq == by_key[(sent.message.sender_id, sent.message.client_id)]
    # A later round's new messages come after everything of the earlier rounds.
    last_seen = 1
    for sent_round in results:
        fresh = [s.message.seq for s in sent_round if not s.duplicate]
        if fresh:
            assert min(fresh) > last_seen
            last_seen = max(fresh)
    # Resync from any cursor gets exactly the gap.
    assert [m.seq for m in gap.messages] == [s for s in seqs if s > cursor]
