from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

PASSWORD = "correct horse battery"


@dataclass
class Person:
    phone: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


SignUp = Callable[..., Awaitable[Person]]


@pytest.fixture
def sign_up(client: httpx.AsyncClient, sms: object) -> SignUp:
    """Sign up, verify and log in through the public API, as a phone app would."""

    async def _sign_up(phone: str = "+393401234567", name: str = "Giulia") -> Person:
        response = await client.post(
            "/api/v1/identity/signup",
            json={"phone": phone, "password": PASSWORD, "display_name": name},
        )
        assert response.status_code == 202, response.text
        code = sms.last_code()  # type: ignore[attr-defined]
        verified = await client.post("/api/v1/identity/verify", json={"phone": phone, "code": code})
        assert verified.status_code == 200, verified.text
        login = await client.post(
            "/api/v1/identity/login",
            json={"phone": phone, "password": PASSWORD, "device_name": "Pixel"},
        )
        assert login.status_code == 200, login.text
        client.cookies.clear()
        return Person(phone=phone, token=login.json()["token"])

    return _sign_up
