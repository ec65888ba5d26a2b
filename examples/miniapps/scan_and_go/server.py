"""Scan-and-go: the supermarket's own backend for its mini program.

It talks to OMO only through the public developer API (appid + secret): the login code from
the frame → openid, the coupons engine's view of a basket ("spend X more to unlock Y"),
payment orders (create, query) and OMO's signed notifications. After payment it hands out an
exit code — signed with the store's own key, single use, valid 10 minutes — that the guard's
page at the door verifies.

Run (the `omo demo` command starts it for you):
    OMO_URL=http://127.0.0.1:8000 OMO_MINIAPP_APPID=mp... OMO_MINIAPP_SECRET=... \
    EXAMPLE_STAFF_KEY=guard EXAMPLE_PORT=8003 python examples/miniapps/scan_and_go/server.py

State is kept in memory: this is an example, a shop would keep it in its database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import segno
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from omo_developer import DeveloperApiError, OmoDeveloper, Settings

CURRENCY = "EUR"
EXIT_VALID_SECONDS = 600
PRODUCTS = {
    "8001002003015": ("Extra virgin olive oil 0.75 l", "8.90"),
    "8001002003022": ("Parmigiano Reggiano 300 g", "12.50"),
    "8001002003039": ("Spaghetti 500 g", "1.20"),
    "8001002003046": ("San Marzano tomatoes 400 g", "2.10"),
    "8001002003053": ("Espresso coffee 250 g", "4.80"),
    "4006381333931": ("Fineliner pens, 4 colours", "3.60"),
}


@dataclass
class Purchase:
    order_id: str
    openid: str
    lines: list[dict[str, Any]]
    total: str
    prepay_id: str
    status: str = "unpaid"
    paid: str | None = None
    discount: str | None = None
    exit_code: str | None = None
    used_at: float | None = field(default=None)


class Store:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.omo = OmoDeveloper(settings)
        self.exit_key = secrets.token_bytes(32)  # the store's own signing key
        self.sessions: dict[str, str] = {}
        self.purchases: dict[str, Purchase] = {}

    def basket(self, items: Any) -> tuple[list[dict[str, Any]], Decimal] | None:
        lines, total = [], Decimal("0")
        for line in items or []:
            code, quantity = str(line.get("code", "")), int(line.get("quantity", 0))
            if code not in PRODUCTS or not 0 < quantity <= 50:
                return None
            name, price = PRODUCTS[code]
            lines.append({"code": code, "name": name, "quantity": quantity, "price": price})
            total += Decimal(price) * quantity
        return lines, total

    def sign_exit(self, order_id: str) -> str:
        expires = int(time.time()) + EXIT_VALID_SECONDS
        payload = f"{order_id}.{expires}"
        mac = hmac.new(self.exit_key, payload.encode(), hashlib.sha256).digest()[:16]
        return f"EXIT.{payload}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def check_exit(self, code: str) -> tuple[Purchase | None, str]:
        parts = code.strip().split(".")
        if len(parts) != 4 or parts[0] != "EXIT":
            return None, "This is not an exit code of this store."
        order_id, expires, given = parts[1], parts[2], parts[3]
        mac = hmac.new(self.exit_key, f"{order_id}.{expires}".encode(), hashlib.sha256).digest()
        expected = base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")
        if not hmac.compare_digest(expected, given):
            return None, "Forged or damaged code: do not let through."
        if not expires.isdigit() or int(expires) < time.time():
            return None, "Expired code: ask the customer to show a new one."
        purchase = self.purchases.get(order_id)
        if purchase is None or purchase.status != "paid":
            return None, "No paid purchase for this code."
        if purchase.used_at is not None:
            return None, "Already used: this code let someone out before."
        purchase.used_at = time.time()
        return purchase, "OK"


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _qr_data_url(text: str) -> str:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=6, border=4)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def build(settings: Settings) -> Starlette:
    store = Store(settings)

    def openid_of(body: dict[str, Any]) -> str | None:
        return store.sessions.get(str(body.get("token", "")))

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def session(request: Request) -> Response:
        code = str((await _json(request)).get("code", ""))
        try:
            found = await store.omo.session(code)
        except DeveloperApiError:
            return _error(401, "login failed")
        token = secrets.token_urlsafe(24)
        store.sessions[token] = found["openid"]
        return JSONResponse({"token": token})

    async def product(request: Request) -> Response:
        code = request.path_params["code"]
        if code not in PRODUCTS:
            return _error(404, "We do not sell this product.")
        name, price = PRODUCTS[code]
        return JSONResponse({"code": code, "name": name, "price": price, "currency": CURRENCY})

    async def preview(request: Request) -> Response:
        """The basket's total and what the coupons engine says about it."""
        body = await _json(request)
        openid = openid_of(body)
        if openid is None:
            return _error(401, "log in first")
        found = store.basket(body.get("items"))
        if found is None:
            return _error(422, "unknown product or quantity")
        lines, total = found
        offers = await store.omo.basket(openid, f"{total:.2f}", CURRENCY) if lines else {}
        best, nearest = offers.get("best"), offers.get("nearest")
        return JSONResponse(
            {
                "total": f"{total:.2f}",
                "best": {"title": best["title"], "discount": best["discount"]["amount"]}
                if best
                else None,
                "nearest": {
                    "title": nearest["title"],
                    "spend_more": nearest["spend_more"]["amount"],
                    "discount": nearest["discount"]["amount"],
                }
                if nearest
                else None,
            }
        )

    async def create_order(request: Request) -> Response:
        body = await _json(request)
        openid = openid_of(body)
        if openid is None:
            return _error(401, "log in first")
        found = store.basket(body.get("items"))
        if not found or not found[0]:
            return _error(422, "scan at least one product")
        lines, total = found
        order_id = f"SG-{secrets.token_hex(6)}"
        count = sum(line["quantity"] for line in lines)
        created = await store.omo.create_order(
            order_id, f"{total:.2f}", CURRENCY, f"Mercato Fresco, {count} items"
        )
        store.purchases[order_id] = Purchase(
            order_id, openid, lines, f"{total:.2f}", created["prepay_id"]
        )
        return JSONResponse({"order_id": order_id, "prepay_id": created["prepay_id"]})

    async def check_order(request: Request) -> Response:
        """After requestPayment: OMO says whether it is paid; then the exit code."""
        body = await _json(request)
        purchase = store.purchases.get(request.path_params["order_id"])
        if purchase is None or openid_of(body) != purchase.openid:
            return _error(404, "no such purchase")
        found = await store.omo.order(purchase.order_id)
        if found["status"] != "succeeded":
            return _error(409, "not paid")
        if purchase.status != "paid":
            purchase.status = "paid"
            purchase.paid = found["paid"]["amount"]
            purchase.discount = found["discount"]["amount"] if found.get("discount") else "0.00"
            purchase.exit_code = store.sign_exit(purchase.order_id)
        assert purchase.exit_code is not None
        return JSONResponse(
            {
                "paid": purchase.paid,
                "discount": purchase.discount,
                "exit_code": purchase.exit_code,
                "exit_qr": _qr_data_url(purchase.exit_code),
                "valid_minutes": EXIT_VALID_SECONDS // 60,
            }
        )

    async def notify(request: Request) -> Response:
        raw = await request.body()
        if not store.omo.notification_is_genuine(
            request.headers.get("x-omo-timestamp", ""),
            request.headers.get("x-omo-signature", ""),
            raw,
        ):
            return _error(401, "bad signature")
        json.loads(raw)  # a real shop would update its stock here
        return Response(status_code=204)

    def staff(request: Request, given: str) -> bool:
        return bool(settings.kitchen_key) and hmac.compare_digest(given, settings.kitchen_key)

    async def guard(request: Request) -> Response:
        key = request.query_params.get("key", "")
        if not staff(request, key):
            return HTMLResponse("<h1>Exit check: staff only</h1>", status_code=403)
        return HTMLResponse(GUARD_PAGE.replace("{{key}}", escape(key, quote=True)))

    async def guard_verify(request: Request) -> Response:
        body = await _json(request)
        if not staff(request, str(body.get("key", ""))):
            return _error(403, "staff only")
        purchase, message = store.check_exit(str(body.get("code", "")))
        if purchase is None:
            return JSONResponse({"ok": False, "message": message})
        count = sum(line["quantity"] for line in purchase.lines)
        return JSONResponse(
            {
                "ok": True,
                "message": f"Paid {purchase.paid} € for {count} items. Let them through.",
                "lines": purchase.lines,
            }
        )

    async def guard_script(request: Request) -> Response:
        return Response(GUARD_SCRIPT, media_type="text/javascript")

    return Starlette(
        routes=[
            Route("/healthz", health),
            Route("/api/session", session, methods=["POST"]),
            Route("/api/products/{code}", product),
            Route("/api/basket", preview, methods=["POST"]),
            Route("/api/orders", create_order, methods=["POST"]),
            Route("/api/orders/{order_id}/check", check_order, methods=["POST"]),
            Route("/notify", notify, methods=["POST"]),
            Route("/guard", guard),
            Route("/guard/verify", guard_verify, methods=["POST"]),
            Route("/guard.js", guard_script),
        ]
    )


GUARD_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Exit check · Mercato Fresco</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 18px system-ui, sans-serif; margin: 1rem; }
input { font: inherit; width: 100%; max-width: 40rem; padding: .4rem; }
button { font: inherit; padding: .4rem 1rem; margin-top: .5rem; }
.ok { color: #1a7f37; font-weight: bold; } .refused { color: #b00020; font-weight: bold; }
</style></head>
<body data-key="{{key}}">
<h1>Exit check · Mercato Fresco</h1>
<form id="check">
<label for="code">Exit code (scan it with the door scanner, or type it)</label><br>
<input id="code" name="code" autocomplete="off" required autofocus>
<br><button type="submit">Verify</button>
</form>
<p id="result" role="status" aria-live="polite"></p>
<script src="/guard.js"></script>
</body></html>
"""

GUARD_SCRIPT = """
const form = document.getElementById("check");
const result = document.getElementById("result");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/guard/verify", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key: document.body.dataset.key, code: form.code.value }),
  });
  const answer = await response.json();
  result.className = answer.ok ? "ok" : "refused";
  result.textContent = answer.message || answer.error;
  form.code.value = "";
  form.code.focus();
});
"""


def main() -> None:
    settings = Settings.from_environment(default_port=8003)
    uvicorn.run(build(settings), host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
