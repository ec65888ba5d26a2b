"""Profile: name, region, language, OMO ID, avatar, finding people."""

from __future__ import annotations

import io

import httpx
from PIL import Image
from tests.identity.conftest import PASSWORD, Person, SignUp

from omo.core.clock import ManualClock


async def _log_in_again(client: httpx.AsyncClient, person: Person) -> Person:
    response = await client.post(
        "/api/v1/identity/login", json={"phone": person.phone, "password": PASSWORD}
    )
    client.cookies.clear()
    return Person(person.phone, response.json()["token"])


def _png(size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def test_region_defaults_to_the_phone_numbers_country(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up("+819012345678", "Yuki")
    assert (await client.get("/api/v1/identity/me", headers=person.auth)).json()["region"] == "JP"


async def test_profile_fields_can_be_changed(client: httpx.AsyncClient, sign_up: SignUp) -> None:
    person = await sign_up()
    response = await client.patch(
        "/api/v1/identity/me",
        json={"display_name": "Giulia R.", "region": "fr", "locale": "it"},
        headers=person.auth,
    )
    body = response.json()
    assert (body["display_name"], body["region"], body["locale"]) == ("Giulia R.", "FR", "it")


async def test_an_unknown_region_is_refused(client: httpx.AsyncClient, sign_up: SignUp) -> None:
    person = await sign_up()
    response = await client.patch("/api/v1/identity/me", json={"region": "QQ"}, headers=person.auth)
    assert response.json()["type"] == "/problems/invalid-region"


async def test_the_persons_language_is_used_for_api_messages(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    await client.patch("/api/v1/identity/me", json={"locale": "it"}, headers=person.auth)
    response = await client.patch("/api/v1/identity/me", json={"region": "QQ"}, headers=person.auth)
    assert response.json()["title"] != "Unknown region"


async def test_omo_id_can_be_changed_then_not_again_within_a_year(
    client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    person = await sign_up()
    first = await client.put(
        "/api/v1/identity/me/omo-id", json={"omo_id": "Giulia_R"}, headers=person.auth
    )
    assert first.json()["omo_id"] == "giulia_r"
    clock.advance(days=200)
    person = await _log_in_again(client, person)
    second = await client.put(
        "/api/v1/identity/me/omo-id", json={"omo_id": "giulia_2"}, headers=person.auth
    )
    assert second.status_code == 409
    assert second.json()["type"] == "/problems/omo-id-change-too-soon"
    clock.advance(days=166)
    person = await _log_in_again(client, person)
    third = await client.put(
        "/api/v1/identity/me/omo-id", json={"omo_id": "giulia_2"}, headers=person.auth
    )
    assert third.status_code == 200


async def test_a_taken_omo_id_is_refused(client: httpx.AsyncClient, sign_up: SignUp) -> None:
    giulia = await sign_up()
    camille = await sign_up("+33612345678", "Camille")
    await client.put(
        "/api/v1/identity/me/omo-id", json={"omo_id": "sunflower"}, headers=giulia.auth
    )
    taken = await client.put(
        "/api/v1/identity/me/omo-id", json={"omo_id": "SunFlower"}, headers=camille.auth
    )
    assert taken.status_code == 409
    assert taken.json()["type"] == "/problems/omo-id-taken"


async def test_a_malformed_omo_id_is_refused(client: httpx.AsyncClient, sign_up: SignUp) -> None:
    person = await sign_up()
    for bad in ("abc", "1starts_with_digit", "has space", "ü_nicode_id"):
        response = await client.put(
            "/api/v1/identity/me/omo-id", json={"omo_id": bad}, headers=person.auth
        )
        assert response.json()["type"] == "/problems/invalid-omo-id", bad


async def test_friends_find_a_person_by_omo_id_without_their_phone(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    giulia = await sign_up()
    camille = await sign_up("+33612345678", "Camille")
    await client.put(
        "/api/v1/identity/me/omo-id", json={"omo_id": "camille_m"}, headers=camille.auth
    )
    found = await client.get("/api/v1/identity/people/camille_m", headers=giulia.auth)
    assert found.json()["display_name"] == "Camille"
    assert "33612345678" not in found.text


async def test_an_avatar_is_stored_reencoded_and_served(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    response = await client.put(
        "/api/v1/identity/me/avatar",
        content=_png((1024, 800)),
        headers={**person.auth, "Content-Type": "image/png"},
    )
    assert response.status_code == 200
    image = await client.get(response.json()["avatar_url"], headers=person.auth)
    assert image.headers["content-type"] == "image/png"
    assert max(Image.open(io.BytesIO(image.content)).size) == 512


async def test_an_oversized_avatar_is_refused(client: httpx.AsyncClient, sign_up: SignUp) -> None:
    person = await sign_up()
    response = await client.put(
        "/api/v1/identity/me/avatar",
        content=b"\x89PNG" + b"0" * (1024 * 1024 + 10),
        headers={**person.auth, "Content-Type": "image/png"},
    )
    assert response.status_code == 413
    assert response.json()["type"] == "/problems/avatar-too-large"
    me = await client.get("/api/v1/identity/me", headers=person.auth)
    assert me.json()["avatar_url"] is None


async def test_a_file_that_is_not_an_image_is_refused(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    response = await client.put(
        "/api/v1/identity/me/avatar",
        content=b"<script>alert(1)</script>",
        headers={**person.auth, "Content-Type": "image/png"},
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/invalid-avatar"


async def test_openids_are_stable_per_app_and_unlinkable_across_apps(
    app: object, sign_up: SignUp, client: httpx.AsyncClient
) -> None:
    await sign_up()
    identity = app.state.identity  # type: ignore[attr-defined]
    me = await client.get("/api/v1/identity/me", headers=(await sign_up("+33612345678")).auth)
    assert me.status_code == 200
    user_id = next(iter((await identity.public_profiles(await _all_ids(identity))).keys()))
    first = await identity.openid("wxapp_a", user_id)
    assert first == await identity.openid("wxapp_a", user_id)
    other = await identity.openid("wxapp_b", user_id)
    assert other != first
    assert await identity.resolve_openid("wxapp_a", first) == user_id
    assert await identity.resolve_openid("wxapp_b", first) is None
    assert await identity.unionid("org_1", user_id) != first


async def _all_ids(identity: object) -> list[object]:
    from sqlalchemy import select

    from omo.identity.models import User

    async with identity.db.sessions() as session:  # type: ignore[attr-defined]
        return list((await session.scalars(select(User.id))).all())


async def test_the_language_other_contexts_read_is_the_one_the_person_chose(
    app: object, sign_up: SignUp, client: httpx.AsyncClient
) -> None:
    person = await sign_up()
    identity = app.state.identity  # type: ignore[attr-defined]
    (user_id,) = await _all_ids(identity)
    shown = (await client.get("/api/v1/identity/me", headers=person.auth)).json()["locale"]
    assert await identity.locale_of(user_id) == shown
    await client.patch("/api/v1/identity/me", json={"locale": "ja"}, headers=person.auth)
    assert await identity.locale_of(user_id) == "ja"


async def test_the_language_of_an_unknown_person_is_none(app: object) -> None:
    import uuid

    identity = app.state.identity  # type: ignore[attr-defined]
    assert await identity.locale_of(uuid.uuid4()) is None
