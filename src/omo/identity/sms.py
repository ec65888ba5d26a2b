"""Pluggable SMS senders: to the server log for local use, or to an HTTP SMS gateway."""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from omo.core.errors import ProblemError, register

logger = logging.getLogger("omo.sms")

register("sms-unavailable", 503, "Text messages cannot be sent right now")


class SmsSender(Protocol):
    async def send(self, phone_e164: str, text: str) -> None: ...


def mask_phone(phone_e164: str) -> str:
    """Enough to tell one's own number apart, not enough to dial it."""
    return phone_e164[:3] + "*" * max(len(phone_e164) - 7, 0) + phone_e164[-4:]


class LogSmsSender:
    """Writes the text to the server log instead of sending it: for a laptop or a demo."""

    async def send(self, phone_e164: str, text: str) -> None:
        logger.warning("SMS to %s: %s", mask_phone(phone_e164), text)


class HttpSmsSender:
    """POSTs `{"to": ..., "text": ...}` as JSON to a gateway URL, with an optional bearer."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    async def send(self, phone_e164: str, text: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(
                    self._url, json={"to": phone_e164, "text": text}, headers=self._headers
                )
                response.raise_for_status()
        except httpx.HTTPError as error:
            logger.error("SMS gateway failed: %s", type(error).__name__)
            raise ProblemError("sms-unavailable", "Try again in a minute.") from error
