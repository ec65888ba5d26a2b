"""Wallets, payment codes, PIN, refunds and idempotency through the HTTP API."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError
from tests.pay.conftest import MakeShop, code_of, top_up

from omo.core.clock import ManualClock
from omo.core.errors import ProblemError
from omo.core.money import Money
from omo.pay import service as service_module


async def test_a_top_up_fills_the_wallet_and_returns_the_balance(
    client: httpx.AsyncClient, make_shop: MakeShop
) -> None:
    shop = await make_shop()
    result = await top_up(client, shop.customer, "0.50", "EUR")
    assert result["status"] == "succeeded"
    assert result["balances"] == [{"amount": "100.50", "currency": "EUR", "minor": 10050}]


async def test_the_merchant_scans_the_code_and_both_sides_see_their_balance(
    client: httpx.AsyncClient, make_shop: MakeShop, app: FastAPI
) -> None:
    shop = await make_shop()
    code = await code_of(client, shop.customer)
    assert len(code) == 18
    assert code.isdigit()
    paid = await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "12.40", "currency": "EUR", "order_id": "A-1"},
        headers=shop.owner.auth,
    )
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert body["payment"]["status"] == "succeeded"
    # 0.6 % platform fee: 12.40 -> 0.07 (rounded down), the merchant settles 12.33.
    assert body["balance"] == {"amount": "12.33", "currency": "EUR", "minor": 1233}
    wallet = (await client.get("/api/v1/pay/wallet", headers=shop.customer.auth)).json()
    assert wallet["balances"] == [{"amount": "87.60", "currency": "EUR", "minor": 8760}]
    assert await app.state.pay.ledger.totals() == {"EUR": 0}
    assert await app.state.pay.ledger.entries_balance()


async def test_a_retried_scan_returns_the_first_result_and_a_changed_one_is_refused(
    client: httpx.AsyncClient, make_shop: MakeShop
) -> None:
    shop = await make_shop()
    code = await code_of(client, shop.customer)
    request = {"code": code, "amount": "5.00", "currency": "EUR", "order_id": "A-2"}
    first = await client.post(shop.charge_url(), json=request, headers=shop.owner.auth)
    again = await client.post(shop.charge_url(), json=request, headers=shop.owner.auth)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    changed = await client.post(
        shop.charge_url(), json={**request, "amount": "6.00"}, headers=shop.owner.auth
    )
    assert changed.status_code == 409
    assert changed.json()["type"] == "/problems/idempotency-conflict"
    wallet = (await client.get("/api/v1/pay/wallet", headers=shop.customer.auth)).json()
    assert wallet["balances"][0]["amount"] == "95.00"


async def test_codes_are_single_use_expire_and_die_with_their_device(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock
) -> None:
    shop = await make_shop()
    code = await code_of(client, shop.customer)
    ok = await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "1.00", "currency": "EUR", "order_id": "B-1"},
        headers=shop.owner.auth,
    )
    assert ok.status_code == 200
    reused = await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "1.00", "currency": "EUR", "order_id": "B-2"},
        headers=shop.owner.auth,
    )
    assert reused.json()["type"] == "/problems/payment-code-used"

    late = await code_of(client, shop.customer)
    clock.advance(seconds=61)
    expired = await client.post(
        shop.charge_url(),
        json={"code": late, "amount": "1.00", "currency": "EUR", "order_id": "B-3"},
        headers=shop.owner.auth,
    )
    assert expired.json()["type"] == "/problems/payment-code-expired"

    orphan = await code_of(client, shop.customer)
    await client.post("/api/v1/identity/logout", headers=shop.customer.auth)
    logged_out = await client.post(
        shop.charge_url(),
        json={"code": orphan, "amount": "1.00", "currency": "EUR", "order_id": "B-4"},
        headers=shop.owner.auth,
    )
    assert logged_out.json()["type"] == "/problems/payment-code-device"


async def test_refusals_move_no_money(client: httpx.AsyncClient, make_shop: MakeShop) -> None:
    shop = await make_shop()
    cases = [
        ({"amount": "0", "currency": "EUR"}, "invalid-amount"),
        ({"amount": "1.001", "currency": "EUR"}, "invalid-amount"),
        ({"amount": "500.00", "currency": "EUR"}, "insufficient-funds"),
        ({"amount": "5", "currency": "JPY"}, "insufficient-funds"),
    ]
    for index, (money, slug) in enumerate(cases):
        code = await code_of(client, shop.customer)
        response = await client.post(
            shop.charge_url(),
            json={"code": code, "order_id": f"R-{index}", **money},
            headers=shop.owner.auth,
        )
        assert response.json()["type"] == f"/problems/{slug}", response.text
    stranger = await client.post(
        shop.charge_url(),
        json={"code": "281234567890123456", "amount": "1", "currency": "EUR", "order_id": "X"},
        headers=shop.customer.auth,
    )
    assert stranger.json()["type"] == "/problems/merchant-forbidden"
    wallet = (await client.get("/api/v1/pay/wallet", headers=shop.customer.auth)).json()
    assert {"amount": "100.00", "currency": "EUR", "minor": 10000} in wallet["balances"]
    # The refused JPY payment created no JPY money (nor, now, an empty JPY account).
    assert all(b["minor"] == 0 for b in wallet["balances"] if b["currency"] == "JPY")


async def test_a_large_payment_waits_for_the_pin_on_the_same_device(
    client: httpx.AsyncClient, make_shop: MakeShop
) -> None:
    shop = await make_shop(fund=("5000.00", "EUR"))
    await client.put("/api/v1/pay/wallet/pin", json={"pin": "246810"}, headers=shop.customer.auth)
    code = await code_of(client, shop.customer)
    pending = await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "1200.00", "currency": "EUR", "order_id": "P-1"},
        headers=shop.owner.auth,
    )
    assert pending.json()["payment"]["status"] == "pending-pin"
    listed = (await client.get("/api/v1/pay/payments/pending", headers=shop.customer.auth)).json()
    assert [p["order_id"] for p in listed] == ["P-1"]
    payment_id = listed[0]["id"]
    for attempt in range(5):
        wrong = await client.post(
            f"/api/v1/pay/payments/{payment_id}/confirm",
            json={"pin": "000000"},
            headers=shop.customer.auth,
        )
        expected = "pin-locked" if attempt == 4 else "pin-wrong"
        assert wrong.json()["type"] == f"/problems/{expected}"
    locked = await client.post(
        f"/api/v1/pay/payments/{payment_id}/confirm",
        json={"pin": "246810"},
        headers=shop.customer.auth,
    )
    assert locked.json()["type"] == "/problems/pin-locked"
    order = await client.get(
        f"/api/v1/pay/merchants/{shop.merchant_id}/orders/P-1", headers=shop.owner.auth
    )
    assert order.json()["status"] == "pending-pin"


async def test_the_right_pin_completes_the_pending_payment(
    client: httpx.AsyncClient, make_shop: MakeShop
) -> None:
    shop = await make_shop(fund=("5000.00", "EUR"))
    await client.put("/api/v1/pay/wallet/pin", json={"pin": "246810"}, headers=shop.customer.auth)
    code = await code_of(client, shop.customer)
    await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "1200.00", "currency": "EUR", "order_id": "P-2"},
        headers=shop.owner.auth,
    )
    listed = (await client.get("/api/v1/pay/payments/pending", headers=shop.customer.auth)).json()
    done = await client.post(
        f"/api/v1/pay/payments/{listed[0]['id']}/confirm",
        json={"pin": "246810"},
        headers=shop.customer.auth,
    )
    assert done.status_code == 200, done.text
    assert done.json()["balance"]["amount"] == "3800.00"
    assert done.json()["payment"]["status"] == "succeeded"


async def test_partial_refunds_up_to_the_paid_amount_within_a_year(
    client: httpx.AsyncClient, make_shop: MakeShop, app: FastAPI, clock: ManualClock
) -> None:
    shop = await make_shop()
    code = await code_of(client, shop.customer)
    await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "30.00", "currency": "EUR", "order_id": "F-1"},
        headers=shop.owner.auth,
    )
    url = f"/api/v1/pay/merchants/{shop.merchant_id}/orders/F-1/refunds"
    first = await client.post(
        url, json={"refund_id": "r1", "amount": "10.00", "currency": "EUR"}, headers=shop.owner.auth
    )
    assert first.status_code == 200, first.text
    again = await client.post(
        url, json={"refund_id": "r1", "amount": "10.00", "currency": "EUR"}, headers=shop.owner.auth
    )
    assert again.json() == first.json()
    too_much = await client.post(
        url, json={"refund_id": "r2", "amount": "20.01", "currency": "EUR"}, headers=shop.owner.auth
    )
    assert too_much.json()["type"] == "/problems/refund-too-large"
    assert "20.00 EUR" in too_much.json()["detail"]
    wrong_currency = await client.post(
        url, json={"refund_id": "r3", "amount": "1", "currency": "JPY"}, headers=shop.owner.auth
    )
    assert wrong_currency.json()["type"] == "/problems/currency-mismatch"
    rest = await client.post(
        url, json={"refund_id": "r4", "amount": "20.00", "currency": "EUR"}, headers=shop.owner.auth
    )
    assert rest.json()["payment"]["status"] == "refunded"
    assert rest.json()["merchant_balance"]["minor"] == 0
    wallet = (await client.get("/api/v1/pay/wallet", headers=shop.customer.auth)).json()
    assert wallet["balances"][0]["amount"] == "100.00"
    assert await app.state.pay.ledger.totals() == {"EUR": 0}

    code = await code_of(client, shop.customer)
    await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "3.00", "currency": "EUR", "order_id": "F-2"},
        headers=shop.owner.auth,
    )
    owner = await app.state.identity.authenticate(shop.owner.token)
    clock.advance(days=366)
    with pytest.raises(ProblemError) as late:
        await app.state.pay.refund(
            owner.user_id, uuid.UUID(shop.merchant_id), "F-2", "r5", Money.of("1", "EUR")
        )
    assert late.value.slug == "refund-window-closed"


async def test_minor_units_follow_the_currency_and_conversion_is_a_recorded_pair(
    client: httpx.AsyncClient, make_shop: MakeShop, app: FastAPI
) -> None:
    shop = await make_shop(fund=("1000", "JPY"))
    kwd = await top_up(client, shop.customer, "1.234", "KWD")
    assert {"amount": "1.234", "currency": "KWD", "minor": 1234} in kwd["balances"]
    bad = await client.post(
        "/api/v1/pay/wallet/top-ups",
        json={"request_id": "j", "bank_account": "JP0001", "amount": "1.5", "currency": "JPY"},
        headers=shop.customer.auth,
    )
    assert bad.json()["type"] == "/problems/invalid-amount"
    converted = await client.post(
        "/api/v1/pay/wallet/conversions",
        json={"amount": "1000", "currency": "JPY", "to_currency": "EUR"},
        headers=shop.customer.auth,
    )
    assert converted.status_code == 200, converted.text
    balances = {b["currency"]: b["amount"] for b in converted.json()["balances"]}
    assert balances["JPY"] == "0"
    assert balances["EUR"] == "6.10"
    assert await app.state.pay.ledger.totals() == {"JPY": 0, "KWD": 0, "EUR": 0}


async def test_the_balance_at_a_past_moment(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock
) -> None:
    shop = await make_shop()
    before = clock.now()
    clock.advance(minutes=5)
    await top_up(client, shop.customer, "20.00", "EUR")
    past = await client.get(
        "/api/v1/pay/wallet/balance-at",
        params={"currency": "EUR", "at": before.isoformat()},
        headers=shop.customer.auth,
    )
    assert past.json()["amount"] == "100.00"


async def test_a_refund_is_in_the_cashiers_audit_log_once(
    client: httpx.AsyncClient, make_shop: MakeShop
) -> None:
    shop = await make_shop()
    code = await code_of(client, shop.customer)
    await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "30.00", "currency": "EUR", "order_id": "A-1"},
        headers=shop.owner.auth,
    )
    url = f"/api/v1/pay/merchants/{shop.merchant_id}/orders/A-1/refunds"
    for _ in range(2):  # a retry of the same refund is not a second entry
        await client.post(
            url,
            json={"refund_id": "ra", "amount": "5.00", "currency": "EUR"},
            headers=shop.owner.auth,
        )
    log = (await client.get("/api/v1/identity/audit-log", headers=shop.owner.auth)).json()
    refunds = [entry for entry in log if entry["action"] == "refund"]
    assert len(refunds) == 1
    assert refunds[0]["detail"] == {
        "merchant_id": str(shop.merchant_id),
        "order_id": "A-1",
        "refund_id": "ra",
        "amount_minor": 500,
        "currency": "EUR",
    }


async def test_a_code_issue_that_fails_changes_nothing_and_the_next_one_works(
    client: httpx.AsyncClient, make_shop: MakeShop, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Voiding the device's codes and inserting the new one is one transaction (one
    statement on PostgreSQL, the codes' own connection on SQLite): a new code that collides
    with an existing one voids nothing, and the device's current code still pays."""
    shop = await make_shop()
    current = await code_of(client, shop.customer)
    me = await app.state.authenticator.authenticate(shop.customer.token)
    monkeypatch.setattr(service_module.secrets, "randbelow", lambda _: int(current[2:]))
    with pytest.raises(IntegrityError):
        await app.state.pay.issue_code(me.user_id, me.session_id)
    monkeypatch.undo()
    paid = await client.post(
        shop.charge_url(),
        json={"code": current, "amount": "1.00", "currency": "EUR", "order_id": "I-1"},
        headers=shop.owner.auth,
    )
    assert paid.status_code == 200, paid.text
    fresh = await code_of(client, shop.customer)
    assert fresh != current


async def test_a_scan_counts_the_device_s_noted_last_seen(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock, app: FastAPI
) -> None:
    """The device check made with the code's claim (PostgreSQL) or on its own (SQLite) agrees
    with authentication: a session past its stored expiry, within its noted one, pays."""
    shop = await make_shop()
    clock.advance(days=app.state.settings.session_ttl_days - 2)
    for person in (shop.customer, shop.owner):  # noted, not written
        assert (await client.get("/api/v1/pay/wallet", headers=person.auth)).status_code == 200
    clock.advance(days=3)  # past the stored expiry, within the noted one
    code = await code_of(client, shop.customer)
    paid = await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "1.00", "currency": "EUR", "order_id": "N-1"},
        headers=shop.owner.auth,
    )
    assert paid.status_code == 200, paid.text


async def test_on_postgresql_the_scan_asks_the_device_and_the_coupons_with_the_code_claim(
    client: httpx.AsyncClient,
    make_shop: MakeShop,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if app.state.db.is_sqlite:
        pytest.skip("SQLite asks them on their own: a statement there costs no round trip")
    shop = await make_shop()
    code = await code_of(client, shop.customer)

    async def not_asked(*args: object, **kwargs: object) -> bool:
        raise AssertionError("asked on its own")

    monkeypatch.setattr(app.state.pay, "session_active", not_asked)
    monkeypatch.setattr(service_module.coupons, "anything_for_payment", not_asked)
    paid = await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "1.00", "currency": "EUR", "order_id": "F-1"},
        headers=shop.owner.auth,
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["payment"]["status"] == "succeeded"
