"""Realtime fan-out: publish a JSON message to a channel, every subscriber of it gets it.

Delivery is at most once: a message published while nobody listens, or while a node is
reconnecting to Redis, is gone. That is by design: the database is the truth, and a
client that missed something catches up by asking for "everything after sequence N".

Every subscriber has a bounded queue. When it is full the oldest message is dropped and
`Subscription.dropped` counts it, so one slow consumer can neither grow memory without
bound nor slow the publisher and the other subscribers down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal, Protocol, Self

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "Broker",
    "BrokerClosedError",
    "Delivery",
    "MemoryBroker",
    "Message",
    "RedisBroker",
    "Subscription",
    "broker_from_url",
]

logger = logging.getLogger("omo.broker")

Message = dict[str, Any]
Delivery = tuple[str, Message]

DEFAULT_QUEUE_SIZE = 1000

# The reader wakes up this often even when idle; it only costs a loop turn.
_READ_POLL_SECONDS = 30.0


class BrokerClosedError(RuntimeError):
    """The broker was closed; it neither publishes nor subscribes any more."""


def _encode(message: Message) -> str:
    # NaN is not JSON; refusing it here beats a decode error on another node.
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _loads(data: str) -> Any:
    # orjson reads several times faster (every chat message is decoded once per node); it
    # refuses integers beyond 64 bits, which the standard library still reads.
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _decode(data: str) -> Message | None:
    try:
        message = _loads(data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


class _Hub(Protocol):
    async def _attach(self, subscription: Subscription) -> None: ...

    async def _detach(self, subscription: Subscription) -> None: ...


class Subscription:
    """A subscriber's view of some channels: `async with`, then iterate or `get()`.

    Messages are shared by every local subscriber of a channel: treat them as read-only.
    """

    def __init__(self, hub: _Hub, channels: Iterable[str], queue_size: int) -> None:
        self.channels: tuple[str, ...] = tuple(dict.fromkeys(channels))
        if not self.channels or not all(isinstance(c, str) and c for c in self.channels):
            raise ValueError("subscribe to at least one non-empty channel name")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.dropped = 0
        self._hub = hub
        # None in the queue marks the end, so readers blocked in get() wake up on close.
        self._queue: asyncio.Queue[Delivery | None] = asyncio.Queue(queue_size)
        self._state: Literal["new", "open", "closed"] = "new"
        self._listener: Callable[[str, Message], None] | None = None

    @property
    def pending(self) -> int:
        """Messages received and not yet read."""
        return self._queue.qsize()

    async def open(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"subscription is already {self._state}")
        # Open before attaching: messages may arrive while Redis confirms the subscribe.
        self._state = "open"
        try:
            await self._hub._attach(self)
        except BaseException:
            self._state = "new"
            raise
        return self

    async def close(self) -> None:
        if self._state == "closed":
            return
        if self._state == "open":
            await self._hub._detach(self)
        self._state = "closed"
        self._push(None)

    def listen(self, listener: Callable[[str, Message], None] | None) -> None:
        """Have each message handed to `listener` as it arrives instead of queued for `get`:
        no reader's wake-up per message. It runs inside the broker's delivery, so it must
        not wait and must not raise. A message arriving while others are still queued is
        queued behind them (order is kept): a reader still drains the queue with `get`,
        which also reports the end (`BrokerClosedError`) as before. None: queue again."""
        self._listener = listener

    def deliver(self, channel: str, message: Message) -> None:
        """Queue a message without ever waiting (called by the broker)."""
        if self._state == "open":
            listener = self._listener
            if listener is not None and self._queue.empty():
                listener(channel, message)
                return
            self._push((channel, message))

    def _push(self, item: Delivery | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    # A deadline argument (not asyncio.timeout) so that "nothing came" is a None, not
    # an exception, for the gateway's keep-alive loops.
    async def get(self, timeout: float) -> Delivery | None:  # noqa: ASYNC109
        """The next message, or None if none arrives within `timeout` seconds."""
        self._check_opened()
        if not self._queue.empty():
            # Under load there usually is one: skip arming and disarming a timer per message.
            return self._unless_closed(self._queue.get_nowait())
        try:
            async with asyncio.timeout(timeout):
                item = await self._queue.get()
        except TimeoutError:
            return None
        return self._unless_closed(item)

    def _check_opened(self) -> None:
        if self._state == "new":
            raise RuntimeError("use `async with broker.subscribe(...)` before reading")

    def _unless_closed(self, item: Delivery | None) -> Delivery:
        if item is None:
            self._queue.put_nowait(None)  # later readers must see the end too
            raise BrokerClosedError("subscription closed")
        return item

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        self._check_opened()
        return self

    async def __anext__(self) -> Delivery:
        try:
            return self._unless_closed(await self._queue.get())
        except BrokerClosedError:
            raise StopAsyncIteration from None


class Broker(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    async def publish_many(self, channels: Iterable[str], message: Message) -> None:
        """The same message to many channels (a broadcast's fan-out): encoded once, sent in
        one go — not one publish per channel."""
        ...

    def subscribe(self, *channels: str) -> Subscription: ...

    def local_channels(self, prefix: str = "") -> list[str]:
        """The channels (starting with `prefix`) that have a subscriber on this node."""
        ...

    def deliver_local(self, channels: Iterable[str], message: Message) -> int:
        """Hand a message to this node's subscribers of these channels only (no network);
        returns how many got it. Every node doing this for its own subscribers is how one
        published event reaches many channels without naming each of them on the wire
        (a broadcast's push to the connected followers). Shared read-only: do not change
        the message afterwards."""
        ...

    async def close(self) -> None: ...


class _Fanout:
    """Which local subscriptions listen to which channel."""

    def __init__(self) -> None:
        self._by_channel: dict[str, set[Subscription]] = {}

    def add(self, subscription: Subscription) -> list[str]:
        """Register; returns the channels that had no local subscriber before."""
        first = [c for c in subscription.channels if not self._by_channel.get(c)]
        for channel in subscription.channels:
            self._by_channel.setdefault(channel, set()).add(subscription)
        return first

    def remove(self, subscription: Subscription) -> list[str]:
        """Unregister; returns the channels left with no local subscriber."""
        emptied = []
        for channel in subscription.channels:
            subscribers = self._by_channel.get(channel, set())
            subscribers.discard(subscription)
            if not subscribers:
                self._by_channel.pop(channel, None)
                emptied.append(channel)
        return emptied

    def deliver(self, channel: str, message: Message) -> None:
        for subscription in tuple(self._by_channel.get(channel, ())):
            subscription.deliver(channel, message)

    def deliver_many(self, channels: Iterable[str], message: Message) -> int:
        by_channel = self._by_channel
        delivered = 0
        for channel in channels:
            subscribers = by_channel.get(channel)
            if subscribers:
                for subscription in tuple(subscribers):
                    subscription.deliver(channel, message)
                    delivered += 1
        return delivered

    def channels(self, prefix: str) -> list[str]:
        return [c for c in self._by_channel if c.startswith(prefix)]

    def subscriptions(self) -> set[Subscription]:
        return set().union(*self._by_channel.values())


class MemoryBroker:
    """In-process broker: one node only (a shop, a demo, a test)."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._fanout = _Fanout()
        self._closed = False

    async def publish(self, channel: str, message: Message) -> None:
        if self._closed:
            raise BrokerClosedError("broker is closed")
        # A JSON round trip, as Redis does, so that what works here works there and the
        # publisher's later changes to its dict never reach subscribers.
        decoded: Message = _loads(_encode(message))
        self._fanout.deliver(channel, decoded)

    async def publish_many(self, channels: Iterable[str], message: Message) -> None:
        if self._closed:
            raise BrokerClosedError("broker is closed")
        decoded: Message = _loads(_encode(message))  # once, shared read-only
        self._fanout.deliver_many(channels, decoded)

    def subscribe(self, *channels: str) -> Subscription:
        return Subscription(self, channels, self._queue_size)

    def local_channels(self, prefix: str = "") -> list[str]:
        return self._fanout.channels(prefix)

    def deliver_local(self, channels: Iterable[str], message: Message) -> int:
        return 0 if self._closed else self._fanout.deliver_many(channels, message)

    async def close(self) -> None:
        self._closed = True
        for subscription in self._fanout.subscriptions():
            await subscription.close()

    async def _attach(self, subscription: Subscription) -> None:
        if self._closed:
            raise BrokerClosedError("broker is closed")
        self._fanout.add(subscription)

    async def _detach(self, subscription: Subscription) -> None:
        self._fanout.remove(subscription)


class RedisBroker:
    """Redis pub/sub broker: every node (process, replica) sees every other's messages.

    One Redis connection per node carries all its subscriptions: a channel is subscribed
    on Redis while at least one local subscriber wants it, and fanned out locally.
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        subscribe_timeout: float = 5.0,
    ) -> None:
        # Prepended as is ("omo:" gives "omo:user:1"), so test runs and deployments
        # sharing one Redis never hear each other.
        self._prefix = prefix
        self._queue_size = queue_size
        self._subscribe_timeout = subscribe_timeout
        self._redis = Redis.from_url(url, decode_responses=True)
        self._pubsub: PubSub = self._redis.pubsub()
        self._cleanup = AsyncExitStack()
        self._cleanup.push_async_callback(self._redis.connection_pool.disconnect)
        self._cleanup.push_async_exit(self._pubsub)
        self._fanout = _Fanout()
        # Serialises Redis (un)subscribe calls so the fan-out table and Redis agree.
        self._lock = asyncio.Lock()
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    def _key(self, channel: str) -> str:
        return self._prefix + channel

    async def publish(self, channel: str, message: Message) -> None:
        if self._closed:
            raise BrokerClosedError("broker is closed")
        await self._redis.publish(self._key(channel), _encode(message))

    async def publish_many(self, channels: Iterable[str], message: Message) -> None:
        if self._closed:
            raise BrokerClosedError("broker is closed")
        data = _encode(message)
        # One round trip per batch instead of one per channel (no MULTI: at most once anyway).
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.publish(self._key(channel), data)
            await pipe.execute()

    def subscribe(self, *channels: str) -> Subscription:
        return Subscription(self, channels, self._queue_size)

    def local_channels(self, prefix: str = "") -> list[str]:
        return self._fanout.channels(prefix)

    def deliver_local(self, channels: Iterable[str], message: Message) -> int:
        return 0 if self._closed else self._fanout.deliver_many(channels, message)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for subscription in self._fanout.subscriptions():
            await subscription.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._cleanup.aclose()

    async def _attach(self, subscription: Subscription) -> None:
        async with self._lock:
            if self._closed:
                raise BrokerClosedError("broker is closed")
            first = self._fanout.add(subscription)
            try:
                if first:
                    await self._subscribe_remote(first)
            except BaseException:
                self._fanout.remove(subscription)
                raise

    async def _detach(self, subscription: Subscription) -> None:
        async with self._lock:
            emptied = self._fanout.remove(subscription)
            if emptied and not self._closed:
                await self._pubsub.unsubscribe(*map(self._key, emptied))

    async def _subscribe_remote(self, channels: list[str]) -> None:
        # SUBSCRIBE returns before Redis has applied it; waiting for the confirmation
        # means a message published after `async with` returns is never missed.
        loop = asyncio.get_running_loop()
        waiting = {self._key(c): loop.create_future() for c in channels}
        self._confirmations.update(waiting)
        try:
            await self._pubsub.subscribe(*waiting)
            self._start_reader()
            async with asyncio.timeout(self._subscribe_timeout):
                await asyncio.gather(*waiting.values())
        finally:
            for key in waiting:
                self._confirmations.pop(key, None)

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_forever(), name="omo-broker-reader")

    async def _read_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                raw = await self._pubsub.get_message(timeout=_READ_POLL_SECONDS)
                backoff = 0.1
            except Exception:
                # redis-py reconnects and resubscribes on the next read; wait, then retry.
                logger.warning("broker lost Redis, retrying in %.1fs", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if raw is not None:
                self._on_raw(raw)

    def _on_raw(self, raw: dict[str, Any]) -> None:
        kind, key = raw.get("type"), raw.get("channel")
        if not isinstance(key, str) or not key.startswith(self._prefix):
            return
        if kind == "subscribe":
            self._confirm(key)
        elif kind == "message":
            self._on_message(key.removeprefix(self._prefix), raw.get("data"))

    def _confirm(self, key: str) -> None:
        future = self._confirmations.get(key)
        if future is not None and not future.done():
            future.set_result(None)

    def _on_message(self, channel: str, data: object) -> None:
        message = _decode(data) if isinstance(data, str) else None
        if message is None:
            logger.warning("dropping a non-JSON-object message on %r", channel)
            return
        self._fanout.deliver(channel, message)


def broker_from_url(redis_url: str | None, prefix: str) -> Broker:
    """Redis when a URL is configured (many nodes), else in-process (one node)."""
    if redis_url:
        return RedisBroker(redis_url, prefix)
    return MemoryBroker()
