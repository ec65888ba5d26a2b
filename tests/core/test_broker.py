from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from omo.core.broker import (
    Broker,
    BrokerClosedError,
    MemoryBroker,
    RedisBroker,
    Subscription,
    broker_from_url,
)

pytestmark = pytest.mark.asyncio

MakeBroker = Callable[..., Broker]
QUIET = 0.2  # how long "nothing arrives" is watched for


def redis_url() -> str:
    """The test Redis, or skip; a CI run that promised services fails instead."""
    url = os.environ.get("OMO_TEST_REDIS_URL")
    if url:
        return url
    if os.environ.get("OMO_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail("OMO_TEST_REQUIRE_SERVICES=1 but OMO_TEST_REDIS_URL is not set")
    pytest.skip("OMO_TEST_REDIS_URL is not set")


@pytest_asyncio.fixture(params=["memory", "redis"])
async def make_broker(request: pytest.FixtureRequest) -> AsyncIterator[MakeBroker]:
    """Builds brokers of one kind; redis ones share a random prefix, like one deployment."""
    url = redis_url() if request.param == "redis" else None
    prefix = f"omo-test-{uuid.uuid4().hex}:"
    made: list[Broker] = []

    def make(queue_size: int = 1000) -> Broker:
        broker: Broker
        if url is None:
            broker = MemoryBroker(queue_size=queue_size)
        else:
            broker = RedisBroker(url, prefix, queue_size=queue_size)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


@pytest_asyncio.fixture
async def broker(make_broker: MakeBroker) -> Broker:
    return make_broker()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_subscriber_gets_its_channel_only(broker: Broker) -> None:
    async with broker.subscribe("user:1") as sub:
        await broker.publish("user:2", {"n": 0})
        await broker.publish("user:1", {"n": 1, "text": "你好"})
        assert await sub.get(timeout=2) == ("user:1", {"n": 1, "text": "你好"})
        assert await sub.get(timeout=QUIET) is None


async def test_one_subscription_can_listen_to_many_channels(broker: Broker) -> None:
    async with broker.subscribe("a", "b") as sub:
        await broker.publish("a", {"n": 1})
        await broker.publish("b", {"n": 2})
        assert [await sub.get(timeout=2) for _ in range(2)] == [("a", {"n": 1}), ("b", {"n": 2})]


async def test_every_subscriber_gets_the_message(broker: Broker) -> None:
    async with broker.subscribe("room") as first, broker.subscribe("room") as second:
        await broker.publish("room", {"hello": "world"})
        assert await first.get(timeout=2) == ("room", {"hello": "world"})
        assert await second.get(timeout=2) == ("room", {"hello": "world"})


async def test_leaving_subscriber_does_not_cut_off_the_others(broker: Broker) -> None:
    async with broker.subscribe("room") as staying:
        async with broker.subscribe("room"):
            pass
        await broker.publish("room", {"n": 1})
        assert await staying.get(timeout=2) == ("room", {"n": 1})


async def test_publish_many_reaches_every_named_channel_once(broker: Broker) -> None:
    async with (
        broker.subscribe("user:1") as one,
        broker.subscribe("user:2", "user:3") as two_and_three,
        broker.subscribe("user:4") as other,
    ):
        await broker.publish_many(["user:1", "user:2", "user:3", "user:9"], {"n": 1})
        assert await one.get(timeout=2) == ("user:1", {"n": 1})
        got = [await two_and_three.get(timeout=2) for _ in range(2)]
        assert sorted(channel for channel, _ in got) == ["user:2", "user:3"]
        assert await one.get(timeout=QUIET) is None
        assert await other.get(timeout=QUIET) is None


async def test_local_channels_and_deliver_local_stay_on_this_node(broker: Broker) -> None:
    assert broker.local_channels() == []
    async with (
        broker.subscribe("user:1") as one,
        broker.subscribe("user:2", "other:2") as two,
    ):
        assert sorted(broker.local_channels("user:")) == ["user:1", "user:2"]
        assert sorted(broker.local_channels()) == ["other:2", "user:1", "user:2"]
        assert broker.deliver_local(["user:1", "user:2", "user:9"], {"n": 1}) == 2
        assert await one.get(timeout=2) == ("user:1", {"n": 1})
        assert await two.get(timeout=2) == ("user:2", {"n": 1})
        assert await two.get(timeout=QUIET) is None
    assert broker.local_channels("user:") == []
    await broker.close()
    assert broker.deliver_local(["user:1"], {"n": 2}) == 0


async def test_deliver_local_does_not_reach_another_node() -> None:
    url, prefix = redis_url(), f"omo-test-{uuid.uuid4().hex}:"
    node_a, node_b = RedisBroker(url, prefix), RedisBroker(url, prefix)
    try:
        async with node_a.subscribe("user:1") as on_a, node_b.subscribe("user:1") as on_b:
            assert node_a.deliver_local(["user:1"], {"from": "a"}) == 1
            assert await on_a.get(timeout=2) == ("user:1", {"from": "a"})
            assert await on_b.get(timeout=QUIET) is None
    finally:
        await node_a.close()
        await node_b.close()


async def test_publish_many_refuses_non_json_and_a_closed_broker(broker: Broker) -> None:
    with pytest.raises(ValueError, match="JSON"):
        await broker.publish_many(["a"], {"x": float("nan")})
    await broker.close()
    with pytest.raises(BrokerClosedError):
        await broker.publish_many(["a"], {"n": 1})


async def test_get_returns_none_on_timeout(broker: Broker) -> None:
    async with broker.subscribe("quiet") as sub:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await sub.get(timeout=0.1) is None
        assert loop.time() - started >= 0.09


async def test_iteration_yields_messages_in_order(broker: Broker) -> None:
    async with broker.subscribe("feed") as sub:
        for n in range(5):
            await broker.publish("feed", {"n": n})
        received = []
        async for channel, message in sub:
            received.append((channel, message["n"]))
            if len(received) == 5:
                break
        assert received == [("feed", n) for n in range(5)]


async def test_a_listener_gets_messages_as_they_come_after_what_was_queued(
    broker: Broker,
) -> None:
    async with broker.subscribe("feed") as sub:
        for n in range(2):
            await broker.publish("feed", {"n": n})
        await asyncio.sleep(0.1)  # queued before anyone listens
        heard: list[tuple[str, int]] = []
        sub.listen(lambda channel, message: heard.append((channel, message["n"])))
        await broker.publish("feed", {"n": 2})  # the queue is not drained: queued behind
        await asyncio.sleep(0.1)
        drained = [await sub.get(timeout=1) for _ in range(3)]
        assert [(d[0], d[1]["n"]) for d in drained if d] == [("feed", n) for n in range(3)]
        for n in range(3, 6):
            await broker.publish("feed", {"n": n})
        for _ in range(50):
            if len(heard) == 3:
                break
            await asyncio.sleep(0.02)
        assert heard == [("feed", n) for n in range(3, 6)]
        assert await sub.get(timeout=0.05) is None
        sub.listen(None)
        await broker.publish("feed", {"n": 6})
        found = await sub.get(timeout=1)
        assert found is not None
        assert found[1]["n"] == 6
    with pytest.raises(BrokerClosedError):
        await sub.get(timeout=1)


async def test_closing_ends_iteration_and_get(broker: Broker) -> None:
    sub = await broker.subscribe("feed").open()
    reader = asyncio.create_task(anext(aiter(sub), None))
    await asyncio.sleep(0.05)
    await sub.close()
    assert await asyncio.wait_for(reader, 2) is None
    with pytest.raises(BrokerClosedError):
        await sub.get(timeout=1)


async def test_closing_the_broker_closes_its_subscriptions(make_broker: MakeBroker) -> None:
    broker = make_broker()
    async with broker.subscribe("feed") as sub:
        await broker.close()
        with pytest.raises(BrokerClosedError):
            await sub.get(timeout=1)
    with pytest.raises(BrokerClosedError):
        await broker.publish("feed", {})


async def test_reading_before_opening_is_a_mistake(broker: Broker) -> None:
    with pytest.raises(RuntimeError):
        await broker.subscribe("feed").get(timeout=0)


async def test_messages_must_be_json(broker: Broker) -> None:
    with pytest.raises((TypeError, ValueError)):
        await broker.publish("feed", {"when": object()})
    with pytest.raises(ValueError, match="JSON"):
        await broker.publish("feed", {"x": float("nan")})


async def test_subscriber_cannot_see_later_changes_by_the_publisher(broker: Broker) -> None:
    async with broker.subscribe("feed") as sub:
        message = {"items": [1]}
        await broker.publish("feed", message)
        message["items"].append(2)
        assert await sub.get(timeout=2) == ("feed", {"items": [1]})


async def test_slow_subscriber_drops_oldest_and_stays_bounded(make_broker: MakeBroker) -> None:
    broker = make_broker(queue_size=10)
    async with broker.subscribe("firehose") as slow, broker.subscribe("firehose") as fast:
        for n in range(50):
            await broker.publish("firehose", {"n": n})
            assert await fast.get(timeout=2) == ("firehose", {"n": n})
            assert slow.pending <= 10
        await wait_until(lambda: slow.dropped == 40)
        assert slow.pending == 10
        kept = [await slow.get(timeout=1) for _ in range(10)]
        assert kept == [("firehose", {"n": n}) for n in range(40, 50)]
        assert fast.dropped == 0


async def test_publisher_never_waits_for_a_full_subscriber(make_broker: MakeBroker) -> None:
    broker = make_broker(queue_size=1)
    async with broker.subscribe("firehose") as sub:
        async with asyncio.timeout(10):
            for n in range(2000):
                await broker.publish("firehose", {"n": n})
        await wait_until(lambda: sub.dropped == 1999)
        assert await sub.get(timeout=1) == ("firehose", {"n": 1999})


async def test_two_nodes_deliver_to_each_other() -> None:
    url, prefix = redis_url(), f"omo-test-{uuid.uuid4().hex}:"
    node_a, node_b = RedisBroker(url, prefix), RedisBroker(url, prefix)
    try:
        async with node_a.subscribe("user:1") as on_a, node_b.subscribe("user:1") as on_b:
            await node_a.publish("user:1", {"from": "a"})
            await node_b.publish("user:1", {"from": "b"})
            for sub in (on_a, on_b):
                assert [await sub.get(timeout=2) for _ in range(2)] == [
                    ("user:1", {"from": "a"}),
                    ("user:1", {"from": "b"}),
                ]
    finally:
        await node_a.close()
        await node_b.close()


async def test_prefixes_keep_deployments_apart() -> None:
    url = redis_url()
    ours, theirs = (
        RedisBroker(url, f"{uuid.uuid4().hex}:"),
        RedisBroker(url, f"{uuid.uuid4().hex}:"),
    )
    try:
        async with ours.subscribe("user:1") as sub:
            await theirs.publish("user:1", {"n": 1})
            assert await sub.get(timeout=QUIET) is None
    finally:
        await ours.close()
        await theirs.close()


async def test_broker_from_url_picks_redis_only_with_a_url() -> None:
    assert isinstance(broker_from_url(None, "omo"), MemoryBroker)
    assert isinstance(broker_from_url("", "omo"), MemoryBroker)
    assert isinstance(broker_from_url("redis://127.0.0.1:1/0", "omo"), RedisBroker)


async def test_subscription_needs_a_channel() -> None:
    with pytest.raises(ValueError, match="channel"):
        MemoryBroker().subscribe()
    with pytest.raises(ValueError, match="channel"):
        MemoryBroker().subscribe("")


async def test_subscription_is_the_public_type() -> None:
    assert isinstance(MemoryBroker().subscribe("x"), Subscription)
