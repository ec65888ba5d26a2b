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
import secrets
import time
from collections.abc import Callable
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
        self.outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX_MAX)
        self.outbox_bytes = 0
        self.in_flight = asyncio.Semaphore(IN_FLIGHT_MAX)
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_heard = time.monotonic()
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
        self.outbox_bytes += len(text)
        self.outbox.put_nowait(text)

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
            text = await self.outbox.get()
            await self.websocket.send_text(text)
            self.outbox_bytes -= len(text)

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
            while True:
                delivery = await sub.get(self.heartbeat)
                if sub.dropped:
                    raise TooSlowError
                if delivery is None:
                    # Quiet for a heartbeat: check the client is alive, then ping it.
                    if time.monotonic() - self.last_heard > self.heartbeat * 3:
                        raise TimeoutError
                    self.push({"type": "ping"}, droppable=True)
                    continue
                frame = delivery[1]
                if frame.get("type") == "message" and frame.get("origin") == self.token:
                    continue  # this device has the ack already
                frame = {k: v for k, v in frame.items() if k != "origin"}
                self.push(frame, droppable=frame.get("type") == "typing")

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
            frame = CLIENT_FRAME.validate_python(data)
        except (ValueError, ValidationError):
            self.error(
                ProblemError("malformed-frame", "Send a JSON object with a known type."), ref
            )
            return
        try:
            await self._dispatch(frame)
        except ProblemError as error:
            self.error(error, ref)

    async def _dispatch(self, frame: object) -> None:
        user_id = self.principal.user_id
        if isinstance(frame, PingFrame):
            self.push({"type": "pong"})
        elif isinstance(frame, SendFrame):
            draft = Draft(
                conversation_id=frame.conversation,
                client_id=frame.id,
                text=frame.text,
                card=frame.card,
                media_id=frame.media_id,
                location=frame.location,
                mentions=tuple(frame.mentions),
                mention_all=frame.mention_all,
            )
            await self.in_flight.acquire()
            try:
                future = self.service.send_nowait(user_id, draft, origin=self.token)
            except BaseException:
                self.in_flight.release()
                raise
            if future is None:
                self._spawn(self._send(draft))
            else:
                # Acknowledged from the future's callback: a task per message cost more than
                # the rest of the gateway's work on a chat message.
                future.add_done_callback(functools.partial(self._sent, draft.client_id))
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
