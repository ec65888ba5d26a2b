"""pay.fastpath: the payment code and the scan answered without the router, byte for byte
as the routed API answers them (success, replay and every refusal)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from tests.coupons.test_coupons import campaign
from tests.pay.conftest import MakeShop, code_of
from tests.support.answers import comparable

from omo.core.clock import ManualClock
from omo.pay import api, fastpath

Post = Callable[..., Awaitable[tuple[httpx.Response, httpx.Response]]]

LANGUAGES = ("en", "it", "zh-CN,zh;q=0.9", "fr;q=0.1, de")


def _by_router(patch: pytest.MonkeyPatch) -> None:
    """Paths the fast path never takes: the router answers."""
    patch.setattr(fastpath, "CODES_PATH", "/never")
    patch.setattr(fastpath, "CHARGE_PATH", re.compile(r"(?!)"))


@pytest.fixture
def both(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> Post:
    """The same request, first to the fast path, then to the router."""

    async def post(
        url: str,
        *,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        **request: object,
    ) -> tuple[httpx.Response, httpx.Response]:
        answers = []
        for by_router in (False, True):
            with monkeypatch.context() as patch:
                if by_router:
                    _by_router(patch)
                client.cookies.clear()
                for name, value in (cookies or {}).items():
                    client.cookies.set(name, value)
                answers.append(await client.post(url, headers=headers, **request))  # type: ignore[arg-type]
        client.cookies.clear()
        return answers[0], answers[1]

    return post


def _scan(code: str, order_id: str, amount: str = "5.00", **more: object) -> dict[str, object]:
    return {"code": code, "amount": amount, "currency": "EUR", "order_id": order_id, **more}


async def test_a_scan_answers_byte_for_byte_like_the_router_and_so_does_its_replay(
    client: httpx.AsyncClient, make_shop: MakeShop, both: Post, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await make_shop()
    code = await code_of(client, shop.customer)
    fast, routed = await both(shop.charge_url(), json=_scan(code, "F-1"), headers=shop.owner.auth)
    assert fast.status_code == 200, fast.text
    assert fast.json()["payment"]["status"] == "succeeded"
    assert comparable(fast) == comparable(routed)  # the router replays the fast payment
    code = await code_of(client, shop.customer)
    with monkeypatch.context() as patch:
        _by_router(patch)
        routed_first = await client.post(
            shop.charge_url(), json=_scan(code, "F-2"), headers=shop.owner.auth
        )
    fast_again, _ = await both(shop.charge_url(), json=_scan(code, "F-2"), headers=shop.owner.auth)
    assert comparable(fast_again) == comparable(routed_first)
    wallet = (await client.get("/api/v1/pay/wallet", headers=shop.customer.auth)).json()
    assert wallet["balances"][0]["amount"] == "90.00"  # two payments, not four


async def test_the_fast_path_answers_the_scan_and_the_code_without_the_router(
    client: httpx.AsyncClient, make_shop: MakeShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered: list[int] = []
    send_answer = fastpath.send_answer

    async def counted(send: object, status: int, body: bytes, *more: object) -> None:
        answered.append(status)
        await send_answer(send, status, body, *more)  # type: ignore[arg-type]

    monkeypatch.setattr(fastpath, "send_answer", counted)
    shop = await make_shop()
    code = await code_of(client, shop.customer)
    paid = await client.post(shop.charge_url(), json=_scan(code, "D-1"), headers=shop.owner.auth)
    assert paid.status_code == 200, paid.text
    assert answered == [201, 200]


async def test_scan_refusals_answer_byte_for_byte_like_the_router_in_every_language(
    client: httpx.AsyncClient, make_shop: MakeShop, both: Post, clock: ManualClock
) -> None:
    shop = await make_shop()
    used = await code_of(client, shop.customer)
    first = await client.post(shop.charge_url(), json=_scan(used, "U-1"), headers=shop.owner.auth)
    assert first.status_code == 200
    expired = await code_of(client, shop.customer)
    clock.advance(seconds=61)
    unknown_merchant = f"/api/v1/pay/merchants/{uuid.uuid4()}/payments"
    cases: list[tuple[str, dict[str, object], dict[str, str], dict[str, str], int, str]] = [
        # url, body, headers, cookies, status, problem type
        (shop.charge_url(), _scan(used, "R-1"), {}, {}, 401, "unauthenticated"),
        (
            shop.charge_url(),
            _scan(used, "R-1"),
            {"Authorization": "Bearer nope"},
            {},
            401,
            "unauthenticated",
        ),
        (
            shop.charge_url(),
            _scan(used, "R-1"),
            {},
            {"omo_session": shop.owner.token},
            403,
            "csrf-failed",
        ),
        (shop.charge_url(), _scan(used, "R-1"), shop.customer.auth, {}, 403, "merchant-forbidden"),
        (unknown_merchant, _scan(used, "R-1"), shop.owner.auth, {}, 404, "merchant-not-found"),
        (shop.charge_url(), _scan(used, "R-2"), shop.owner.auth, {}, 409, "payment-code-used"),
        (
            shop.charge_url(),
            _scan(expired, "R-3"),
            shop.owner.auth,
            {},
            410,
            "payment-code-expired",
        ),
        (
            shop.charge_url(),
            _scan("28" + "0" * 16, "R-4"),
            shop.owner.auth,
            {},
            404,
            "payment-code-invalid",
        ),
        (
            shop.charge_url(),
            _scan(used, "U-1", "6.00"),
            shop.owner.auth,
            {},
            409,
            "idempotency-conflict",
        ),
        (
            shop.charge_url(),
            _scan(used, "R-5", "1.001"),
            shop.owner.auth,
            {},
            422,
            "invalid-amount",
        ),
    ]
    for url, body, headers, cookies, status, slug in cases:
        for language in LANGUAGES:
            fast, routed = await both(
                url, json=body, headers={**headers, "Accept-Language": language}, cookies=cookies
            )
            assert fast.status_code == status, (fast.text, url, body)
            assert fast.headers["content-type"] == "application/problem+json"
            assert not slug or fast.json()["type"] == f"/problems/{slug}"
            assert comparable(fast) == comparable(routed)
    with_csrf = {**shop.owner.auth, "X-OMO-CSRF": "1"}
    fast, routed = await both(
        shop.charge_url() + "?lang=it", json=_scan(used, "R-6"), headers=with_csrf
    )
    assert fast.json()["type"] == "/problems/payment-code-used"
    assert comparable(fast) == comparable(routed)


async def test_a_refused_scan_in_the_cookie_session_answers_like_the_router(
    client: httpx.AsyncClient, make_shop: MakeShop, both: Post
) -> None:
    shop = await make_shop()
    code = await code_of(client, shop.customer)
    fast, routed = await both(
        shop.charge_url(),
        json=_scan(code, "K-1", "500.00"),
        headers={"X-OMO-CSRF": "1"},
        cookies={"omo_session": shop.owner.token},
    )
    assert fast.json()["type"] == "/problems/insufficient-funds"
    assert comparable(fast) == comparable(routed)


async def test_bodies_the_router_refuses_are_passed_on_to_it(
    client: httpx.AsyncClient, make_shop: MakeShop, both: Post
) -> None:
    shop = await make_shop()
    code = await code_of(client, shop.customer)
    auth = shop.owner.auth
    json_type = {**auth, "Content-Type": "application/json"}
    cases: list[dict[str, object]] = [
        {"content": b"{not json", "headers": json_type},
        {"content": b"", "headers": json_type},
        {"content": b"[1, 2]", "headers": json_type},
        {"json": {**_scan(code, "V-1"), "tip": "1.00"}, "headers": auth},
        {"json": {"code": code, "amount": "1.00"}, "headers": auth},
        {"json": _scan("12", "V-2"), "headers": auth},
        {"json": _scan(code, "V-3", coupon="best"), "headers": auth},
        {"content": json.dumps(_scan(code, "V-4")).encode(), "headers": auth},  # no type
        {
            "content": json.dumps(_scan(code, "V-5")).encode(),
            "headers": {**auth, "Content-Type": "text/plain"},
        },
        {"json": _scan(code, "V-6"), "headers": {}},  # valid, but without a session: 401
    ]
    for request in cases:
        fast, routed = await both(shop.charge_url(), **request)
        assert fast.status_code in (401, 422), (fast.text, request)
        assert comparable(fast) == comparable(routed)
    malformed = "/api/v1/pay/merchants/not-a-merchant/payments"
    fast, routed = await both(malformed, json=_scan(code, "V-7"), headers=auth)
    assert fast.status_code == 422
    assert comparable(fast) == comparable(routed)
    # None of them used the code up: it still pays.
    paid = await client.post(shop.charge_url(), json=_scan(code, "V-8"), headers=auth)
    assert paid.status_code == 200, paid.text


async def test_a_payment_waiting_for_the_pin_answers_like_the_router(
    client: httpx.AsyncClient, make_shop: MakeShop, both: Post
) -> None:
    shop = await make_shop(fund=("5000.00", "EUR"))
    code = await code_of(client, shop.customer)
    fast, routed = await both(
        shop.charge_url(), json=_scan(code, "P-1", "1200.00"), headers=shop.owner.auth
    )
    assert fast.json()["payment"]["status"] == "pending-pin"
    assert comparable(fast) == comparable(routed)


async def test_a_payment_with_a_coupon_applied_answers_like_the_router(
    client: httpx.AsyncClient, make_shop: MakeShop, both: Post, clock: ManualClock
) -> None:
    shop = await make_shop()
    offer = await campaign(client, shop, clock, min_spend="20.00")
    claimed = await client.post(
        "/api/v1/coupons/claims",
        json={"claim_code": offer["claim_code"]},
        headers=shop.customer.auth,
    )
    assert claimed.status_code == 201, claimed.text
    code = await code_of(client, shop.customer)
    fast, routed = await both(
        shop.charge_url(), json=_scan(code, "C-1", "25.00"), headers=shop.owner.auth
    )
    assert fast.json()["payment"]["discount"]["amount"] == "5.00"
    assert comparable(fast) == comparable(routed)
    code = await code_of(client, shop.customer)
    none, routed = await both(
        shop.charge_url(), json=_scan(code, "C-2", "25.00", coupon="none"), headers=shop.owner.auth
    )
    assert none.json()["payment"]["discount"]["amount"] == "0.00"
    assert comparable(none) == comparable(routed)


def _same_but_the_code(fast: httpx.Response, routed: httpx.Response) -> None:
    """Two issued codes' answers: the same status, headers and bytes once the router's code
    and its QR are swapped for the fast path's."""
    ours, theirs = fast.json(), routed.json()
    swapped = routed.content
    for field in ("code", "qr_svg"):
        swapped = swapped.replace(
            json.dumps(theirs[field])[1:-1].encode(), json.dumps(ours[field])[1:-1].encode()
        )
    assert ours["qr_svg"] == api.code_qr_svg(ours["code"])
    # The QR's path differs in length from code to code: the lengths are the bodies'.
    status, headers, _ = comparable(fast)
    assert (status, headers[1:]) == (routed.status_code, comparable(routed)[1][1:])
    assert headers[0] == ("content-length", str(len(fast.content)))
    assert fast.content == swapped


async def test_a_payment_code_answers_like_the_router_and_pays(
    client: httpx.AsyncClient, make_shop: MakeShop, both: Post
) -> None:
    shop = await make_shop()
    fast, routed = await both("/api/v1/pay/codes", headers=shop.customer.auth)
    assert fast.status_code == 201, fast.text
    _same_but_the_code(fast, routed)
    # The router's code is the device's newest: the fast one no longer pays.
    for code, status in ((fast.json()["code"], 409), (routed.json()["code"], 200)):
        paid = await client.post(
            shop.charge_url(), json=_scan(code, f"Q-{status}"), headers=shop.owner.auth
        )
        assert paid.status_code == status, paid.text


async def test_payment_code_refusals_answer_byte_for_byte_like_the_router(
    client: httpx.AsyncClient, make_shop: MakeShop, both: Post, app: FastAPI
) -> None:
    shop = await make_shop()
    for language in LANGUAGES:
        lang = {"Accept-Language": language}
        for headers, cookies in (
            (lang, {}),
            ({**lang, "Authorization": "Bearer nope"}, {}),
            ({**lang, "Authorization": "Basic " + shop.customer.token}, {}),
            (lang, {"omo_session": shop.customer.token}),
        ):
            fast, routed = await both("/api/v1/pay/codes", headers=headers, cookies=cookies)
            assert fast.status_code in (401, 403), fast.text
            assert comparable(fast) == comparable(routed)
    # Over the per-person rate: the limiter's 429, its Retry-After and body, both ways.
    app.state.settings.payment_codes_per_minute = 2
    fast, routed = await both("/api/v1/pay/codes", headers=shop.customer.auth)
    assert (fast.status_code, routed.status_code) == (201, 201)
    for language in ("en", "it"):
        headers = {**shop.customer.auth, "Accept-Language": language}
        fast, routed = await both("/api/v1/pay/codes", headers=headers)
        assert fast.status_code == 429, fast.text
        assert "retry-after" in fast.headers
        assert comparable(fast) == comparable(routed)


async def test_a_cookie_session_gets_its_code_from_the_fast_path_as_from_the_router(
    client: httpx.AsyncClient, make_shop: MakeShop, both: Post
) -> None:
    shop = await make_shop()
    fast, routed = await both(
        "/api/v1/pay/codes",
        headers={"X-OMO-CSRF": "1"},
        cookies={"omo_session": shop.customer.token},
    )
    assert fast.status_code == 201, fast.text
    _same_but_the_code(fast, routed)
