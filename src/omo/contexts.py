"""The bounded contexts this build serves, in dependency order.

Each entry is a package `omo.<name>` with `models.py` (its tables) and `api.py` exposing
`router` and, optionally, `async def start(app)` / `async def stop(app)` that put the
context's service on `app.state` and release it, and `async def seed_demo(app)` in `demo.py`.
"""

from __future__ import annotations

CONTEXTS: tuple[str, ...] = (
    "identity",
    "messaging",
    "pay",
    "coupons",
    "accounts",
    "care",
    "social",
    "social.nearby",
    "miniapps",
)
