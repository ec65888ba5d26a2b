"""The realtime gateway: one WebSocket per device, protocol v1 (see docs/MESSAGING.md).

Each connection has three tasks: the reader (frames from the client), the pump (the
person's broker channel) and the writer (a bounded outbox to the socket). A client too slow
to keep up is disconnected with close code 4008 rather than allowed to grow the outbox; it
reconnects and asks for what it missed, so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine, Generator
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from omo.core.auth import SESSION_COOKIE, Authenticator, Principal
from omo.core.broker import BrokerClosedError
from omo.core.errors import REGISTRY, ProblemError, register
from omo.core.i18n import translations
from omo.messaging.schemas import (
    CLIENT_FRAME,
    AuthFrame,
    ConversationsFrame,
    HideFrame,
    PingFrame,
    ReadFrame,
    RecallFrame,
    SendFrame,
    SyncFrame,
    TypingFrame,
)
from omo.messaging.service import Draft, MessagingService, Sent, user_channel

logger = logging.getLogger("omo.messaging.gateway")

register("malformed-frame", 400, "That frame cannot be read")
register("frame-too-large", 413, "That frame is too large")

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
OUTBOX_MAX = 512
OUTBOX_BYTES_MAX = 4 * 1024 * 1024
HEARTBEAT_SECONDS = 20.0
IN_FLIGHT_MAX = 64
AUTH_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 1.0

CLOSE_UNAUTHENTICATED = 4001
CLOSE_TOO_SLOW = 4008
CLOSE_IDLE = 4000


class TooSlowError(Exception):
    """The client does not read fast enough; it will resume by sync."""


class _Resume:
    """Awaiting this finishes a coroutine that already ran up to its first suspension, where
    it yielded `waiting` (what `yield from` would do in the task that started it)."""

    __slots__ = ("coro", "waiting")

    def __init__(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self.coro, self.waiting = coro, waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting = self.coro, self.waiting
        while True:
            try:
                answer = yield waiting
            except BaseException as error:
                try:
                    waiting = coro.throw(error)
                except StopIteration:
                    return
            else:
                try:
                    waiting = coro.send(answer)
                except StopIteration:
                    return


class _Failed:
    """A write that failed at once: the writer task raises its error, as if it had failed
    there (the connection then ends the same way)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_SEND_OPTIONS = frozenset(("card", "media_id", "location", "mentions", "mention_all"))
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")


def plain_send(data: Any) -> tuple[str, uuid.UUID, str] | None:
    """(id, conversation, text) of a `send` frame of text alone, checked exactly as
    `CLIENT_FRAME` would check it (a `SendFrame` with these and every other field at its
    default), without its validation machinery: the frame every chat message is. None for
    anything else, which `CLIENT_FRAME` then validates (or refuses)."""
    if (
        type(data) is not dict
        or data.get("type") != "send"
        or not data.keys().isdisjoint(_SEND_OPTIONS)
    ):
        return None
    client_id, conversation, text = data.get("id"), data.get("conversation"), data.get("text", "")
    if (
        type(client_id) is not str
        or not 1 <= len(client_id) <= 64
        or type(conversation) is not str
        or _CANONICAL_UUID.match(conversation) is None
        or type(text) is not str
    ):
        return None
    return client_id, uuid.UUID(conversation), text


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser
    return urlsplit(origin).netloc == websocket.headers.get("host")


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        service: MessagingService,
        principal: Principal,
        heartbeat: float,
    ) -> None:
        self.websocket = websocket
        self.service = service
        self.principal = principal
        self.heartbeat = heartbeat
        self.token = secrets.token_urlsafe(9)
        # Frames waiting for the socket, or a write that began at once but had to wait
        # (`_Resume`, its frame's length) or failed (`_Failed`): see `push`.
        self.outbox: asyncio.Queue[str | tuple[_Resume, int] | _Failed] = asyncio.Queue(OUTBOX_MAX)
        self.outbox_bytes = 0
        self.writing = False  # the writer task is inside a write
        self.in_flight = asyncio.Semaphore(IN_FLIGHT_MAX)
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_heard = time.monotonic()
        self.last_delivery = 0.0
        self.too_slow = False
        locale = principal.locale or getattr(websocket.state, "locale", "en")
        self._: Callable[[str], str] = translations(locale).gettext

    # -- outbound ----------------------------------------------------------------------------

    def push(self, frame: dict[str, Any], *, droppable: bool = False) -> None:
        """Queue a frame for the socket; bounded in frames and in bytes."""
        # orjson: compact UTF-8 like json.dumps(separators=(",", ":"), ensure_ascii=False),
        # several times faster on the two frames (ack, message) every chat message costs.
        text = orjson.dumps(frame).decode()
        over_budget = self.outbox_bytes and self.outbox_bytes + len(text) > OUTBOX_BYTES_MAX
        if self.outbox.full() or over_budget:
            if droppable:
                return
            raise TooSlowError
        if self.outbox.empty() and not self.writing:
            self._write_now(text)
            return
        self.outbox_bytes += len(text)
        self.outbox.put_nowait(text)

    def _write_now(self, text: str) -> None:
        """Nothing queued and no write under way: write the frame from here, without waking
        the writer task (a task wake-up per frame; two per chat message). The socket's send
        normally completes without waiting; when it must wait (the client reads slowly), the
        rest of it goes to the outbox, ahead of any later frame, for the writer task."""
        coro = self.websocket.send_text(text)
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
        except Exception as error:
            self.outbox.put_nowait(_Failed(error))
            return
        self.outbox_bytes += len(text)
        self.outbox.put_nowait((_Resume(coro, waiting), len(text)))

    def error(self, error: ProblemError, ref: str | None = None) -> None:
        detail = None
        if error.detail:
            detail = self._(error.detail) % error.params if error.params else self._(error.detail)
        frame: dict[str, Any] = {
            "type": "error",
            "code": error.slug,
            "title": self._(error.title),
            "detail": detail,
        }
        if ref is not None:
            frame["ref"] = ref
        self.push(frame)

    async def _write_forever(self) -> None:
        while True:
            item = await self.outbox.get()
            if isinstance(item, _Failed):
                raise item.error
            self.writing = True
            try:
                if isinstance(item, str):
                    await self.websocket.send_text(item)
                    self.outbox_bytes -= len(item)
                else:
                    await item[0]
                    self.outbox_bytes -= item[1]
            finally:
                self.writing = False

    async def _pump(self) -> None:
        async with self.service.broker.subscribe(user_channel(self.principal.user_id)) as sub:
            self.push(
                {
                    "type": "ready",
                    "v": PROTOCOL_VERSION,
                    "heartbeat": self.heartbeat,
                    "max_frame": MAX_FRAME_BYTES,
                }
            )
            # Deliveries reach `_heard` from the broker itself (no wake-up of this task per
            # message); this loop forwards what was queued meanwhile, keeps the heartbeat and
            # ends with the subscription.
            sub.listen(self._heard)
            try:
                while True:
                    delivery = await sub.get(self.heartbeat)
                    if sub.dropped:
                        raise TooSlowError
                    if delivery is None:
                        if time.monotonic() - self.last_delivery < self.heartbeat:
                            continue  # deliveries came through `_heard`: not quiet
                        # Quiet for a heartbeat: check the client is alive, then ping it.
                        if time.monotonic() - self.last_heard > self.heartbeat * 3:
                            raise TimeoutError
                        self.push({"type": "ping"}, droppable=True)
                        continue
                    self._forward(delivery[1])
            finally:
                sub.listen(None)

    def _forward(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "message" and frame.get("origin") == self.token:
            return  # this device has the ack already
        if "origin" in frame:
            frame = {k: v for k, v in frame.items() if k != "origin"}
        self.push(frame, droppable=frame.get("type") == "typing")

    def _heard(self, _channel: str, frame: dict[str, Any]) -> None:
        """A delivery handed over by the broker (see `_pump`); must not raise."""
        self.last_delivery = time.monotonic()
        if self.too_slow:
            return
        try:
            self._forward(frame)
        except TooSlowError:
            # As when the pump finds the client too slow: close with 4008, once.
            self.too_slow = True
            self._spawn(self._close(CLOSE_TOO_SLOW))

    # -- inbound -----------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            self.last_heard = time.monotonic()
            raw: str | None = message.get("text")
            if raw is None:
                try:
                    raw = bytes(message.get("bytes") or b"").decode("utf-8")
                except UnicodeDecodeError:
                    raw = "\x00"
            await self.handle(raw)

    async def handle(self, raw: str) -> None:
        if (
            len(raw) > MAX_FRAME_BYTES
            or len(raw.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES
        ):
            self.error(
                ProblemError(
                    "frame-too-large",
                    "Send at most %(limit)d bytes in one frame.",
                    params={"limit": MAX_FRAME_BYTES},
                )
            )
            return
        ref: str | None = None
        try:
            data = orjson.loads(raw)
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                ref = data["id"][:64]
            plain = plain_send(data)
            frame = None if plain is not None else CLIENT_FRAME.validate_python(data)
        except (ValueError, ValidationError):
            self.error(
                ProblemError("malformed-frame", "Send a JSON object with a known type."), ref
            )
            return
        try:
            if plain is not None:
                await self._send_draft(
                    Draft(conversation_id=plain[1], client_id=plain[0], text=plain[2])
                )
            else:
                await self._dispatch(frame)
        except ProblemError as error:
            self.error(error, ref)

    async def _dispatch(self, frame: object) -> None:
        user_id = self.principal.user_id
        if isinstance(frame, PingFrame):
            self.push({"type": "pong"})
        elif isinstance(frame, SendFrame):
            await self._send_draft(
                Draft(
                    conversation_id=frame.conversation,
                    client_id=frame.id,
                    text=frame.text,
                    card=frame.card,
                    media_id=frame.media_id,
                    location=frame.location,
                    mentions=tuple(frame.mentions),
                    mention_all=frame.mention_all,
                )
            )
        elif isinstance(frame, RecallFrame):
            await self.in_flight.acquire()
            self._spawn(self._recall(frame))
        elif isinstance(frame, SyncFrame):
            page = await self.service.history(
                user_id, frame.conversation, after=frame.after, limit=frame.limit
            )
            self.push(
                {
                    "type": "messages",
                    "conversation": str(frame.conversation),
                    "messages": await self.service.wire(page.messages),
                    "until": page.until,
                    "more": page.more,
                }
            )
        elif isinstance(frame, ConversationsFrame):
            views = await self.service.conversations(user_id)
            self.push(
                {
                    "type": "conversations",
                    "conversations": [
                        {
                            "id": str(v.id),
                            "last_seq": v.last_seq,
                            "read_seq": v.read_seq,
                            "unread": v.unread,
                        }
                        for v in views
                    ],
                }
            )
        elif isinstance(frame, ReadFrame):
            await self.service.mark_read(user_id, frame.conversation, frame.seq)
        elif isinstance(frame, TypingFrame):
            await self.service.typing(user_id, frame.conversation)
        elif isinstance(frame, HideFrame):
            await self.service.hide(user_id, frame.conversation, frame.seq)
        elif isinstance(frame, AuthFrame):
            pass  # already authenticated: harmless

    async def _send_draft(self, draft: Draft) -> None:
        await self.in_flight.acquire()
        try:
            future = self.service.send_nowait(self.principal.user_id, draft, origin=self.token)
        except BaseException:
            self.in_flight.release()
            raise
        if future is None:
            self._spawn(self._send(draft))
        else:
            # Acknowledged from the future's callback: a task per message cost more than
            # the rest of the gateway's work on a chat message.
            future.add_done_callback(functools.partial(self._sent, draft.client_id))

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _sent(self, ref: str, future: asyncio.Future[Sent]) -> None:
        """The ack (or the refusal) of a send queued with `send_nowait`."""
        if future.cancelled():
            self.in_flight.release()
            return
        failure = future.exception()
        try:
            if failure is None and future.result().wired is None:
                # The wire form could not be made after the commit: make it in a task.
                self._spawn(self._acked(ref, future))
                return
            self.in_flight.release()
            if isinstance(failure, ProblemError):
                self.error(failure, ref)
            elif failure is not None:
                logger.warning("a send failed", exc_info=failure)
            else:
                self._ack(ref, future.result())
        except TooSlowError:
            self._spawn(self._close(CLOSE_TOO_SLOW))

    def _ack(self, ref: str, sent: Sent, wired: dict[str, Any] | None = None) -> None:
        self.push(
            {
                "type": "ack",
                "id": ref,
                "seq": sent.message.seq,
                "duplicate": sent.duplicate,
                "message": wired or sent.wired,
            }
        )

    async def _acked(self, ref: str, work: Any) -> None:
        try:
            sent: Sent = await work
            wired = sent.wired
            if wired is None:
                wired = (await self.service.wire([sent.message]))[0]
            self._ack(ref, sent, wired)
        except ProblemError as error:
            self.error(error, ref)
        except TooSlowError:
            await self._close(CLOSE_TOO_SLOW)
        finally:
            self.in_flight.release()

    async def _send(self, draft: Draft) -> None:
        await self._acked(
            draft.client_id, self.service.send(self.principal.user_id, draft, origin=self.token)
        )

    async def _recall(self, frame: RecallFrame) -> None:
        await self._acked(
            frame.id or f"recall:{frame.seq}",
            self.service.recall(
                self.principal.user_id, frame.conversation, frame.seq, origin=self.token
            ),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def _close(self, code: int) -> None:
        # The close frame queues behind unsent data; a client that does not read would
        # keep us waiting forever, so give it a moment and then drop the connection.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await self.websocket.close(code)

    async def run(self) -> None:
        parts = [
            asyncio.create_task(self._pump()),
            asyncio.create_task(self._write_forever()),
            asyncio.create_task(self._read_forever()),
        ]
        try:
            done, _pending = await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
            failure = next((t.exception() for t in done if not t.cancelled()), None)
            if isinstance(failure, TooSlowError):
                await self._close(CLOSE_TOO_SLOW)
            elif isinstance(failure, TimeoutError):
                await self._close(CLOSE_IDLE)
            elif isinstance(failure, BrokerClosedError):
                await self._close(1001)
            elif failure is not None and not isinstance(failure, WebSocketDisconnect):
                logger.warning("connection failed", exc_info=failure)
                await self._close(1011)
        finally:
            for task in [*parts, *self.tasks]:
                task.cancel()
            await asyncio.gather(*parts, *self.tasks, return_exceptions=True)


async def _authenticate(websocket: WebSocket, authenticator: Authenticator) -> Principal | None:
    cookie = websocket.cookies.get(SESSION_COOKIE)
    if cookie and _same_origin(websocket):
        return await authenticator.authenticate(cookie)
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_SECONDS):
            raw = await websocket.receive_text()
        frame = CLIENT_FRAME.validate_json(raw) if len(raw) <= MAX_FRAME_BYTES else None
    except (TimeoutError, ValueError, ValidationError, WebSocketDisconnect, KeyError):
        return None
    if not isinstance(frame, AuthFrame):
        return None
    return await authenticator.authenticate(frame.token)


async def serve(
    websocket: WebSocket,
    service: MessagingService,
    authenticator: Authenticator,
    heartbeat: float,
) -> None:
    """Authenticate (cookie from the same origin, else a first `auth` frame), then run."""
    await websocket.accept()
    principal = await _authenticate(websocket, authenticator)
    if principal is None:
        _ = translations(getattr(websocket.state, "locale", "en")).gettext
        title = REGISTRY["unauthenticated"][1]
        with contextlib.suppress(Exception):
            await websocket.send_text(
                json.dumps(
                    {
                        "type": "error",
                        "code": "unauthenticated",
                        "title": _(title),
                        "detail": _("Log in to do this."),
                    }
                )
            )
            await websocket.close(CLOSE_UNAUTHENTICATED)
        return
    await Connection(websocket, service, principal, heartbeat).run()
