"""Table ordering: the restaurant's own backend for its mini program.

It talks to OMO only through the public developer API (appid + secret): the login code from
the frame → openid (jscode2session), payment orders (create, query), and OMO's signed payment
notifications. It also serves the kitchen's screen, live: new orders and payments appear
without a reload (Server-Sent Events), behind the staff key.

Run (the `omo demo` command starts it for you):
    OMO_URL=http://127.0.0.1:8000 OMO_MINIAPP_APPID=mp... OMO_MINIAPP_SECRET=... \
    EXAMPLE_STAFF_KEY=kitchen EXAMPLE_PORT=8002 python examples/miniapps/table_ordering/server.py

State is kept in memory: this is an example, a restaurant would keep it in its database.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from omo_developer import DeveloperApiError, OmoDeveloper, Settings

CURRENCY = "EUR"
MENU = (
    {"id": "margherita", "name": "Pizza Margherita", "price": "8.50"},
    {"id": "diavola", "name": "Pizza Diavola", "price": "10.00"},
    {"id": "carbonara", "name": "Spaghetti alla carbonara", "price": "11.50"},
    {"id": "tiramisu", "name": "Tiramisù", "price": "5.50"},
    {"id": "water", "name": "Still water 0.5 l", "price": "2.00"},
)
PRICES = {item["id"]: Decimal(item["price"]) for item in MENU}
TABLE = re.compile(r"^t=([0-9]{1,3})$")


@dataclass
class Order:
    order_id: str
    table: str
    lines: list[dict[str, Any]]
    total: str
    status: str = "unpaid"  # unpaid | paid
    paid: str | None = None
    discount: str | None = None
    prepay_id: str = ""
    openid: str = field(default="", repr=False)


class Restaurant:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.omo = OmoDeveloper(settings)
        self.sessions: dict[str, str] = {}  # our token -> openid
        self.orders: dict[str, Order] = {}
        self.listeners: set[asyncio.Queue[str]] = set()
        self.counter = 0

    def publish(self, order: Order) -> None:
        shown = {k: v for k, v in asdict(order).items() if k not in ("openid", "prepay_id")}
        event = json.dumps(shown)
        for queue in self.listeners:
            queue.put_nowait(event)

    def openid_of(self, body: dict[str, Any]) -> str | None:
        return self.sessions.get(str(body.get("token", "")))

    async def mark_paid(self, order: Order) -> None:
        found = await self.omo.order(order.order_id)
        if found["status"] == "succeeded" and order.status != "paid":
            order.status = "paid"
            order.paid = found["paid"]["amount"] if found.get("paid") else order.total
            order.discount = found["discount"]["amount"] if found.get("discount") else "0.00"
            self.publish(order)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def build(settings: Settings) -> Starlette:
    shop = Restaurant(settings)

    async def session(request: Request) -> Response:
        """The frame's login code → our own session token (the openid stays here)."""
        code = str((await _json(request)).get("code", ""))
        try:
            found = await shop.omo.session(code)
        except DeveloperApiError:
            return _problem(401, "login failed")
        token = secrets.token_urlsafe(24)
        shop.sessions[token] = found["openid"]
        return JSONResponse({"token": token})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def menu(request: Request) -> Response:
        return JSONResponse({"currency": CURRENCY, "items": list(MENU)})

    async def create_order(request: Request) -> Response:
        """Prices come from our menu, never from the frame."""
        body = await _json(request)
        openid = shop.openid_of(body)
        if openid is None:
            return _problem(401, "log in first")
        table = TABLE.match(str(body.get("scene", "")))
        if table is None:
            return _problem(422, "scan the code on your table")
        lines, total = [], Decimal("0")
        for line in body.get("items") or []:
            item, quantity = str(line.get("id", "")), int(line.get("quantity", 0))
            if item not in PRICES or not 0 < quantity <= 20:
                return _problem(422, "unknown dish or quantity")
            name = next(m["name"] for m in MENU if m["id"] == item)
            lines.append({"id": item, "name": name, "quantity": quantity})
            total += PRICES[item] * quantity
        if not lines:
            return _problem(422, "choose at least one dish")
        shop.counter += 1
        order_id = f"T{table.group(1)}-{shop.counter:04d}-{secrets.token_hex(2)}"
        amount = f"{total:.2f}"
        created = await shop.omo.create_order(
            order_id, amount, CURRENCY, f"Table {table.group(1)}, {len(lines)} dishes"
        )
        order = Order(order_id, table.group(1), lines, amount, prepay_id=created["prepay_id"])
        order.openid = openid
        shop.orders[order_id] = order
        shop.publish(order)
        return JSONResponse({"order_id": order_id, "prepay_id": order.prepay_id, "total": amount})

    async def check_order(request: Request) -> Response:
        """After requestPayment: ask OMO whether the order is paid (never trust the frame)."""
        body = await _json(request)
        order = shop.orders.get(request.path_params["order_id"])
        if order is None or shop.openid_of(body) != order.openid:
            return _problem(404, "no such order")
        await shop.mark_paid(order)
        return JSONResponse(
            {"status": order.status, "paid": order.paid, "discount": order.discount}
        )

    async def notify(request: Request) -> Response:
        """OMO's signed payment notification (pay's merchant webhook)."""
        raw = await request.body()
        if not shop.omo.notification_is_genuine(
            request.headers.get("x-omo-timestamp", ""),
            request.headers.get("x-omo-signature", ""),
            raw,
        ):
            return _problem(401, "bad signature")
        event = json.loads(raw)
        order_id = str(event.get("data", {}).get("order_id", "")).partition(":")[2]
        order = shop.orders.get(order_id)
        if order is not None and event.get("type") == "payment.succeeded":
            await shop.mark_paid(order)
        return Response(status_code=204)

    def staff(request: Request) -> bool:
        given = request.query_params.get("key", "")
        return bool(settings.kitchen_key) and hmac.compare_digest(given, settings.kitchen_key)

    async def kitchen(request: Request) -> Response:
        if not staff(request):
            return HTMLResponse("<h1>Kitchen: staff only</h1>", status_code=403)
        page = KITCHEN_PAGE.replace("{{key}}", escape(request.query_params["key"], quote=True))
        return HTMLResponse(page)

    async def kitchen_events(request: Request) -> Response:
        if not staff(request):
            return _problem(403, "staff only")
        queue: asyncio.Queue[str] = asyncio.Queue()

        async def stream() -> AsyncIterator[str]:
            shop.listeners.add(queue)
            try:
                for order in shop.orders.values():
                    shown = {k: v for k, v in asdict(order).items() if k not in ("openid",)}
                    yield f"data: {json.dumps(shown)}\n\n"
                yield ": ready\n\n"
                while True:
                    try:
                        yield f"data: {await asyncio.wait_for(queue.get(), 15)}\n\n"
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                shop.listeners.discard(queue)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def kitchen_script(request: Request) -> Response:
        return Response(KITCHEN_SCRIPT, media_type="text/javascript")

    return Starlette(
        routes=[
            Route("/healthz", health),
            Route("/api/session", session, methods=["POST"]),
            Route("/api/menu", menu),
            Route("/api/orders", create_order, methods=["POST"]),
            Route("/api/orders/{order_id}/check", check_order, methods=["POST"]),
            Route("/notify", notify, methods=["POST"]),
            Route("/kitchen", kitchen),
            Route("/kitchen/events", kitchen_events),
            Route("/kitchen.js", kitchen_script),
        ]
    )


KITCHEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kitchen · Trattoria Da Nino</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 16px system-ui, sans-serif; margin: 1rem; background: #fafafa; color: #111; }
ol { list-style: none; padding: 0; display: grid; gap: .75rem;
     grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); }
li { background: #fff; border: 2px solid #888; border-radius: .5rem; padding: .75rem; }
li.paid { border-color: #1a7f37; }
h2 { margin: 0 0 .25rem; font-size: 1.2rem; }
.status { font-weight: bold; }
</style></head>
<body data-key="{{key}}">
<h1>Kitchen · Trattoria Da Nino</h1>
<p id="live" role="status" aria-live="polite">Connecting…</p>
<ol id="orders" aria-label="Orders" aria-live="polite"></ol>
<script src="/kitchen.js"></script>
</body></html>
"""

KITCHEN_SCRIPT = """
const list = document.getElementById("orders");
const live = document.getElementById("live");
const key = document.body.dataset.key;
const events = new EventSource("/kitchen/events?key=" + encodeURIComponent(key));
events.onopen = () => { live.textContent = "Live: new orders appear here."; };
events.onerror = () => { live.textContent = "Reconnecting…"; };
events.onmessage = (event) => {
  const order = JSON.parse(event.data);
  let item = document.getElementById("order-" + order.order_id);
  if (!item) {
    item = document.createElement("li");
    item.id = "order-" + order.order_id;
    list.prepend(item);
  }
  item.className = order.status;
  item.replaceChildren();
  const title = document.createElement("h2");
  title.textContent = "Table " + order.table;
  const dishes = document.createElement("ul");
  for (const line of order.lines) {
    const dish = document.createElement("li");
    dish.textContent = line.quantity + " × " + line.name;
    dishes.append(dish);
  }
  const status = document.createElement("p");
  status.className = "status";
  status.textContent = order.status === "paid"
    ? "Paid " + order.paid + " € (coupon −" + order.discount + " €)"
    : "Waiting for payment: " + order.total + " €";
  item.append(title, dishes, status);
};
"""


def main() -> None:
    settings = Settings.from_environment(default_port=8002)
    uvicorn.run(build(settings), host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
