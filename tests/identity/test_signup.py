"""Sign-up and phone verification."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from tests.identity.conftest import PASSWORD

from omo.core.clock import ManualClock

PROBLEM = "application/problem+json"


async def _count_users(app: object) -> int:
    return await app.state.identity.count_people()  # type: ignore[attr-defined]


async def test_sign_up_texts_a_six_digit_code(client: httpx.AsyncClient, sms: object) -> None:
    response = await client.post(
        "/api/v1/identity/signup",
        json={"phone": "+39 340 123 4567", "password": PASSWORD, "display_name": "Giulia"},
    )
    assert response.status_code == 202
    assert response.json() == {"status": "code_sent"}
    assert len(sms.last_code()) == 6  # type: ignore[attr-defined]


async def test_the_log_sender_masks_the_phone_number(
    client: httpx.AsyncClient, sms: object
) -> None:
    await client.post(
        "/api/v1/identity/signup",
        json={"phone": "+393401234567", "password": PASSWORD, "display_name": "Giulia"},
    )
    assert "+393401234567" not in sms.texts()[-1]  # type: ignore[attr-defined]


@pytest.mark.parametrize("phone", ["12345", "+1 555", "not a phone", "+999123456789"])
async def test_malformed_phone_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, app: object, phone: str
) -> None:
    response = await client.post(
        "/api/v1/identity/signup",
        json={"phone": phone, "password": PASSWORD, "display_name": "X"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/invalid-phone"
    assert await _count_users(app) == 0


async def test_unknown_fields_are_refused(client: httpx.AsyncClient, app: object) -> None:
    response = await client.post(
        "/api/v1/identity/signup",
        json={"phone": "+393401234567", "password": PASSWORD, "display_name": "G", "admin": True},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "/problems/validation-error"
    assert body["errors"][0]["loc"] == ["body", "admin"]
    assert await _count_users(app) == 0


async def test_weak_password_is_refused(client: httpx.AsyncClient, app: object) -> None:
    response = await client.post(
        "/api/v1/identity/signup",
        json={"phone": "+393401234567", "password": "short", "display_name": "G"},
    )
    assert response.json()["type"] == "/problems/weak-password"
    assert await _count_users(app) == 0


async def test_verified_phone_cannot_sign_up_again(
    client: httpx.AsyncClient, sign_up: object
) -> None:
    await sign_up()  # type: ignore[operator]
    again = await client.post(
        "/api/v1/identity/signup",
        json={"phone": "+393401234567", "password": PASSWORD, "display_name": "Other"},
    )
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/phone-taken"


async def _signed_up(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/identity/signup",
        json={"phone": "+393401234567", "password": PASSWORD, "display_name": "Giulia"},
    )
    assert response.status_code == 202


async def test_right_code_verifies_the_phone(client: httpx.AsyncClient, sms: object) -> None:
    await _signed_up(client)
    response = await client.post(
        "/api/v1/identity/verify",
        json={"phone": "+393401234567", "code": sms.last_code()},  # type: ignore[attr-defined]
    )
    assert response.json() == {"status": "verified"}


async def test_login_before_verification_is_refused(client: httpx.AsyncClient) -> None:
    await _signed_up(client)
    response = await client.post(
        "/api/v1/identity/login", json={"phone": "+393401234567", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/phone-not-verified"


async def test_a_code_cannot_be_used_twice(client: httpx.AsyncClient, sms: object) -> None:
    await _signed_up(client)
    body = {"phone": "+393401234567", "code": sms.last_code()}  # type: ignore[attr-defined]
    assert (await client.post("/api/v1/identity/verify", json=body)).status_code == 200
    reused = await client.post("/api/v1/identity/verify", json=body)
    assert reused.status_code == 410
    assert reused.json()["type"] == "/problems/code-expired"


async def test_an_expired_code_is_refused(
    client: httpx.AsyncClient, sms: object, clock: ManualClock
) -> None:
    await _signed_up(client)
    clock.advance(minutes=11)
    response = await client.post(
        "/api/v1/identity/verify",
        json={"phone": "+393401234567", "code": sms.last_code()},  # type: ignore[attr-defined]
    )
    assert response.status_code == 410


async def test_wrong_guesses_are_limited_per_code(client: httpx.AsyncClient, sms: object) -> None:
    await _signed_up(client)
    right = sms.last_code()  # type: ignore[attr-defined]
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        response = await client.post(
            "/api/v1/identity/verify", json={"phone": "+393401234567", "code": wrong}
        )
        assert response.json()["type"] == "/problems/code-invalid"
    exhausted = await client.post(
        "/api/v1/identity/verify", json={"phone": "+393401234567", "code": right}
    )
    assert exhausted.status_code == 429
    assert exhausted.json()["type"] == "/problems/code-attempts-exhausted"


async def test_a_new_code_replaces_the_old_one(
    client: httpx.AsyncClient, sms: object, clock: ManualClock
) -> None:
    await _signed_up(client)
    first = sms.last_code()  # type: ignore[attr-defined]
    clock.advance(seconds=61)
    await client.post("/api/v1/identity/codes", json={"phone": "+393401234567"})
    second = sms.last_code()  # type: ignore[attr-defined]
    if first != second:
        old = await client.post(
            "/api/v1/identity/verify", json={"phone": "+393401234567", "code": first}
        )
        assert old.status_code in (400, 410)
    new = await client.post(
        "/api/v1/identity/verify", json={"phone": "+393401234567", "code": second}
    )
    assert new.status_code == 200


async def test_codes_cannot_be_requested_in_a_burst(client: httpx.AsyncClient) -> None:
    await _signed_up(client)
    again = await client.post("/api/v1/identity/codes", json={"phone": "+393401234567"})
    assert again.status_code == 429
    assert int(again.headers["retry-after"]) >= 1
    assert again.json()["type"] == "/problems/rate-limited"


async def test_signup_records_an_event_without_the_phone(
    client: httpx.AsyncClient, app: object
) -> None:
    await _signed_up(client)
    from omo.core.events import OutboxEvent

    async with app.state.db.sessions() as session:  # type: ignore[attr-defined]
        rows = (await session.scalars(select(OutboxEvent))).all()
        count = await session.scalar(select(func.count()).select_from(OutboxEvent))
    assert count == 1
    assert rows[0].topic == "identity.signed_up"
    assert "393401234567" not in str(rows[0].payload)
    assert rows[0].payload["region"] == "IT"
