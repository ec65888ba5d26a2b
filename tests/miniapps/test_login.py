"""`login`: a one-time code for the frame, exchanged by the mini program's server (appid +
secret) for the openid — once, within 5 minutes, never for another mini program."""

from __future__ import annotations

import httpx
from tests.miniapps.conftest import API, MakeProgram, Person, Program, released

from omo.core.clock import ManualClock


async def _code(client: httpx.AsyncClient, program: Program, person: Person) -> str:
    accepted = await client.post(f"{API}/launch/{program.appid}/privacy", headers=person.headers)
    assert accepted.status_code == 200, accepted.text
    response = await client.post(f"{API}/launch/{program.appid}/login", headers=person.headers)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 300
    assert "session_key" not in response.json()
    code: str = response.json()["code"]
    return code


async def _exchange(client: httpx.AsyncClient, program: Program, code: str) -> httpx.Response:
    return await client.post(
        f"{API}/dev/{program.appid}/sessions", json={"code": code}, headers=program.basic
    )


async def test_the_server_exchanges_a_code_for_the_openid(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    response = await _exchange(client, program, await _code(client, program, diner))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["openid"].startswith("o")
    assert body["unionid"].startswith("o")
    assert len(body["session_key"]) == 24
    again = await _exchange(client, program, await _code(client, program, diner))
    assert again.json()["openid"] == body["openid"]  # stable for the person and app


async def test_a_code_is_good_only_once(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    code = await _code(client, program, diner)
    assert (await _exchange(client, program, code)).status_code == 200
    twice = await _exchange(client, program, code)
    assert twice.status_code == 410
    assert twice.json()["type"] == "/problems/miniapps-code-invalid"


async def test_a_code_expires_after_five_minutes(
    client: httpx.AsyncClient, program: Program, diner: Person, clock: ManualClock
) -> None:
    await released(client, program)
    code = await _code(client, program, diner)
    clock.advance(minutes=5, seconds=1)
    assert (await _exchange(client, program, code)).status_code == 410


async def test_a_wrong_secret_cannot_exchange(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    code = await _code(client, program, diner)
    wrong = Program(program.owner, program.organisation_id, program.id, program.appid, "f" * 32)
    assert (await _exchange(client, wrong, code)).status_code == 401
    assert (await _exchange(client, program, code)).status_code == 200  # still unused


async def test_another_mini_program_cannot_exchange_the_code(
    client: httpx.AsyncClient, program: Program, make_program: MakeProgram, diner: Person
) -> None:
    await released(client, program)
    code = await _code(client, program, diner)
    other = await make_program(diner, "Elsewhere")
    assert (await _exchange(client, other, code)).status_code == 410


async def test_openids_differ_across_organisations_and_reveal_no_phone(
    client: httpx.AsyncClient,
    program: Program,
    make_program: MakeProgram,
    diner: Person,
) -> None:
    other = await make_program(diner, "Another brand")
    await released(client, program)
    await released(client, other)
    mine = (await _exchange(client, program, await _code(client, program, diner))).json()
    theirs = (await _exchange(client, other, await _code(client, other, diner))).json()
    assert mine["openid"] != theirs["openid"]
    assert mine["unionid"] != theirs["unionid"]
    for value in (mine["openid"], mine["unionid"]):
        assert "612345678" not in value
        assert diner.omo_id not in value


async def test_login_waits_for_the_privacy_notice_to_be_accepted(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    response = await client.post(f"{API}/launch/{program.appid}/login", headers=diner.headers)
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/miniapps-privacy-not-accepted"


async def test_login_is_refused_before_a_release_to_non_testers(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    response = await client.post(f"{API}/launch/{program.appid}/login", headers=diner.headers)
    assert response.status_code == 404


async def test_the_wechat_shaped_jscode2session_route(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    code = await _code(client, program, diner)
    params = {
        "appid": program.appid,
        "secret": "wrong",
        "js_code": code,
        "grant_type": "authorization_code",
    }
    assert (await client.get("/sns/jscode2session", params=params)).json()["errcode"] == 40125
    params["secret"] = program.secret
    first = await client.get("/sns/jscode2session", params=params)
    assert set(first.json()) == {"openid", "unionid", "session_key"}
    assert (await client.get("/sns/jscode2session", params=params)).json()["errcode"] == 40029
