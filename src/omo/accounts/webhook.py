"""The signed webhook to a brand's server, driven from the transactional outbox.

For each follower event (subscribe, unsubscribe, SCAN, menu CLICK/VIEW, text message) of an
account with a webhook, POST WeChat-shaped XML to the brand's URL with
`signature = sha1(sorted(token, timestamp, nonce))`; 5 s timeout, 3 attempts, then the
delivery is visible as failed. The brand server's passive XML reply is delivered to the
follower. The cursor moves only after a batch is handled, so an event in flight when OMO
stops is delivered after the restart (at least once, as WeChat's own pushes are).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx
from defusedxml import ElementTree

from omo.accounts.events import WEBHOOK_TOPICS
from omo.accounts.service import AccountService
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.events import OutboxCursor, StoredEvent, read_after
from omo.core.outbound import RefusedDestination, check_destination

logger = logging.getLogger("omo.accounts.webhook")

CONSUMER = "accounts.webhooks"
TIMEOUT_SECONDS = 5.0
ATTEMPTS = 3

register("accounts-webhook-check-failed", 400, "The webhook URL did not pass the check")


def signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def event_xml(app_id: str, event: StoredEvent) -> str:
    """The event as WeChat's XML push."""
    p = event.payload
    created = int(event.occurred_at.timestamp())
    head = (
        f"<ToUserName>{_cdata(app_id)}</ToUserName>"
        f"<FromUserName>{_cdata(p['openid'])}</FromUserName>"
        f"<CreateTime>{created}</CreateTime>"
    )
    if event.topic == "accounts.message_received":
        msg_id = uuid.UUID(p["message_id"]).int % 2**63
        body = (
            f"<MsgType>{_cdata('text')}</MsgType><Content>{_cdata(p['text'])}</Content>"
            f"<MsgId>{msg_id}</MsgId>"
        )
    else:
        name, key = {
            "accounts.followed": (
                "subscribe",
                ("qrscene_" + p["scene"]) if p.get("scene") else "",
            ),
            "accounts.unfollowed": ("unsubscribe", ""),
            "accounts.scanned": ("SCAN", p.get("scene", "")),
            "accounts.menu_clicked": (
                "CLICK" if p.get("action") == "click" else "VIEW",
                p.get("key", ""),
            ),
        }[event.topic]
        body = (
            f"<MsgType>{_cdata('event')}</MsgType><Event>{_cdata(name)}</Event>"
            f"<EventKey>{_cdata(key)}</EventKey>"
        )
    return f"<xml>{head}{body}</xml>"


def passive_reply(raw: bytes) -> tuple[str, str]:
    """What the brand server's passive XML reply says: ("text", the text), ("transfer", the
    kf account or '') for `transfer_customer_service`, or ("", "") for "success", empty or
    anything else."""
    raw = raw.strip()
    if not raw or raw == b"success":
        return "", ""
    try:
        root = ElementTree.fromstring(raw)
    except Exception:
        return "", ""
    kind = (root.findtext("MsgType") or "").strip()
    if kind == "transfer_customer_service":
        return "transfer", (root.findtext("TransInfo/KfAccount") or "").strip()[:80]
    if kind == "text":
        text = (root.findtext("Content") or "").strip()[:4000]
        return ("text", text) if text else ("", "")
    return "", ""


def passive_reply_text(raw: bytes) -> str:
    """The text of a passive XML reply ('' for "success", empty or anything else)."""
    raw = raw.strip()
    if not raw or raw == b"success":
        return ""
    try:
        root = ElementTree.fromstring(raw)
    except Exception:
        return ""
    if (root.findtext("MsgType") or "").strip() != "text":
        return ""
    return (root.findtext("Content") or "").strip()[:4000]


def _signed_params(token: str) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    return {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}


def allowed_hosts(setting: str) -> tuple[str, ...]:
    """The deployment's allow-list (settings OMO_ACCOUNTS_WEBHOOK_HOSTS): host names, or
    '*.example.org' for every subdomain of example.org; empty: any public host."""
    return tuple(h.strip().lower().rstrip(".") for h in setting.split(",") if h.strip())


def host_allowed(url: str, hosts: Sequence[str]) -> bool:
    if not hosts:
        return True
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    for pattern in hosts:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):  # a subdomain, not example.org itself
                return True
        elif host == pattern:
            return True
    return False


async def check_destination_allowed(
    url: str, *, allow_private: bool, hosts: Sequence[str] = ()
) -> None:
    """Only public http(s) destinations (unless the deployment allows private networks): a
    brand admin must not make OMO call its own network (SSRF); and, when the deployment keeps
    an allow-list of brand servers, only those hosts. Checked when the URL is saved and again
    before every delivery, since DNS answers (and the list) change."""
    if not host_allowed(url, hosts):
        raise ProblemError(
            "accounts-webhook-check-failed",
            "This platform sends webhooks only to the brand servers its operator approved.",
        )
    try:
        await check_destination(url, allow_private=allow_private)
    except RefusedDestination as refused:
        if refused.reason == "private":
            raise ProblemError(
                "accounts-webhook-check-failed", "The URL points into a private network."
            ) from None
        if refused.reason == "unresolvable":
            raise ProblemError(
                "accounts-webhook-check-failed", "The host name does not resolve."
            ) from None
        raise ProblemError(
            "accounts-webhook-check-failed", "Use an http or https URL with a host name."
        ) from None


async def check_url(
    url: str,
    token: str,
    *,
    within: float = TIMEOUT_SECONDS,
    allow_private: bool = False,
    hosts: Sequence[str] = (),
) -> None:
    """The URL check handshake: the brand's server must echo `echostr` back."""
    await check_destination_allowed(url, allow_private=allow_private, hosts=hosts)
    echostr = secrets.token_hex(10)
    try:
        async with httpx.AsyncClient(timeout=within) as client:
            answer = await client.get(url, params={**_signed_params(token), "echostr": echostr})
    except httpx.HTTPError:
        raise ProblemError(
            "accounts-webhook-check-failed", "Your server could not be reached."
        ) from None
    if answer.status_code != 200 or answer.text.strip() != echostr:
        raise ProblemError(
            "accounts-webhook-check-failed", "Your server did not echo the echostr parameter."
        )


class WebhookWorker:
    def __init__(
        self,
        service: AccountService,
        db: Database,
        *,
        interval: float = 0.5,
        retry_delays: tuple[float, ...] = (0.5, 2.0),
        timeout: float = TIMEOUT_SECONDS,
        allow_private: bool = False,
        hosts: Sequence[str] = (),
    ) -> None:
        self.service, self.db = service, db
        self.allow_private, self.hosts = allow_private, tuple(hosts)
        self.interval, self.retry_delays, self.timeout = interval, retry_delays, timeout
        self._task: asyncio.Task[None] | None = None
        # One client for the worker's life: making one loads the CA bundle (~15 ms of the
        # event loop's time), which a client per round paid on every follower message.
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run_forever(self) -> None:
        while True:
            try:
                if await self.run_once() == 0:
                    await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook delivery round failed")
                await asyncio.sleep(self.interval * 4)

    async def run_once(self) -> int:
        """Handle the next batch of follower events; returns how many were read."""
        async with self.db.sessions() as session:
            cursor = await session.get(OutboxCursor, CONSUMER)
            events = await read_after(
                session, cursor.last_event_id if cursor else None, 100, WEBHOOK_TOPICS
            )
        if not events:
            return 0
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        targets = await self.service.webhook_targets(
            [uuid.UUID(event.payload["account_id"]) for event in events]
        )
        for event in events:
            target = targets.get(uuid.UUID(event.payload["account_id"]))
            if target is not None:
                await self._deliver(self._client, event, target)
        async with self.db.transaction() as session:
            cursor = await session.get(OutboxCursor, CONSUMER, with_for_update=True)
            if cursor is None:
                session.add(OutboxCursor(consumer=CONSUMER, last_event_id=events[-1].id))
            elif cursor.last_event_id < events[-1].id:
                cursor.last_event_id = events[-1].id
        return len(events)

    async def _deliver(
        self, client: httpx.AsyncClient, event: StoredEvent, target: tuple[str, str, str]
    ) -> None:
        account_id = uuid.UUID(event.payload["account_id"])
        url, token, app_id = target
        if not await self.service.delivery_claimed(event.id, account_id):
            return
        try:
            await check_destination_allowed(url, allow_private=self.allow_private, hosts=self.hosts)
        except ProblemError:
            logger.warning("webhook destination refused: not an allowed public address")
            await self.service.delivery_done(
                event.id, delivered=False, attempts=0, error="destination refused"
            )
            return
        xml = event_xml(app_id, event)
        error = ""
        for attempt in range(1, ATTEMPTS + 1):
            params = {**_signed_params(token), "openid": event.payload["openid"]}
            try:
                answer = await client.post(
                    url, params=params, content=xml.encode(), headers={"Content-Type": "text/xml"}
                )
                if answer.status_code == 200:
                    kind, said = passive_reply(answer.content)
                    if kind:
                        await self.service.bot_answered(
                            account_id, event.payload["openid"], event.topic, kind, said
                        )
                    await self.service.delivery_done(event.id, delivered=True, attempts=attempt)
                    return
                error = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            if attempt <= len(self.retry_delays):
                await asyncio.sleep(self.retry_delays[attempt - 1])
        logger.warning("webhook delivery failed after %s attempts: %s", ATTEMPTS, error)
        await self.service.delivery_done(event.id, delivered=False, attempts=ATTEMPTS, error=error)


__all__ = [
    "WebhookWorker",
    "check_url",
    "event_xml",
    "passive_reply",
    "passive_reply_text",
    "signature",
]
