"""A small client of OMO's public developer API for mini program backends (appid + secret
over HTTP Basic). The example backends use nothing else from OMO."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Settings:
    omo_url: str
    appid: str
    secret: str
    webhook_secret: str
    host: str
    port: int
    kitchen_key: str

    @classmethod
    def from_environment(cls, default_port: int) -> Settings:
        return cls(
            omo_url=os.environ.get("OMO_URL", "http://127.0.0.1:8000").rstrip("/"),
            appid=os.environ["OMO_MINIAPP_APPID"],
            secret=os.environ["OMO_MINIAPP_SECRET"],
            webhook_secret=os.environ.get("OMO_WEBHOOK_SECRET", ""),
            host=os.environ.get("EXAMPLE_HOST", "127.0.0.1"),
            port=int(os.environ.get("EXAMPLE_PORT", str(default_port))),
            kitchen_key=os.environ.get("EXAMPLE_STAFF_KEY", ""),
        )


class DeveloperApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"OMO answered {status}: {body}")
        self.status, self.body = status, body


class OmoDeveloper:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(
            base_url=f"{settings.omo_url}/api/v1/miniapps/dev/{settings.appid}",
            auth=(settings.appid, settings.secret),
            timeout=15.0,
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        body = response.json() if response.content else None
        if response.status_code >= 400:
            raise DeveloperApiError(response.status_code, body)
        return body

    async def session(self, code: str) -> dict[str, str]:
        """jscode2session: the login code from the frame → openid, unionid, session key."""
        found: dict[str, str] = await self._call("POST", "/sessions", json={"code": code})
        return found

    async def create_order(
        self, order_id: str, amount: str, currency: str, description: str
    ) -> dict[str, Any]:
        body = {
            "order_id": order_id,
            "amount": amount,
            "currency": currency,
            "description": description,
        }
        created: dict[str, Any] = await self._call("POST", "/orders", json=body)
        return created

    async def order(self, order_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("GET", f"/orders/{order_id}")
        return found

    async def refund(self, order_id: str, refund_id: str, amount: str, currency: str) -> Any:
        body = {"refund_id": refund_id, "amount": amount, "currency": currency}
        return await self._call("POST", f"/orders/{order_id}/refunds", json=body)

    async def basket(self, openid: str, amount: str, currency: str) -> dict[str, Any]:
        body = {"openid": openid, "amount": amount, "currency": currency}
        found: dict[str, Any] = await self._call("POST", "/baskets", json=body)
        return found

    def notification_is_genuine(self, timestamp: str, signature: str, body: bytes) -> bool:
        """OMO's signed notifications: hex HMAC-SHA256 of "timestamp.body"."""
        if not self.settings.webhook_secret:
            return False
        expected = hmac.new(
            self.settings.webhook_secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(f"sha256={expected}", signature)
