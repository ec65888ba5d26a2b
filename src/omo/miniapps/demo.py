"""The demo world's mini programs: the two examples of `examples/miniapps/` (table ordering at
Trattoria Da Nino, scan-and-go at Mercato Fresco), each with its organisation, verified
official account (followed by the demo people, so receipts reach their chats), merchant
account, coupons, and its package published from the examples folder and released.

Each example's backend is its own process: `omo demo` starts them (see `BACKENDS`), with the
appid and a fresh secret of its mini program, on the demo's port + 2 and + 3.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from omo.accounts.service import AccountService
from omo.core.errors import ProblemError
from omo.demo import DEMO_PASSWORD, PEOPLE
from omo.miniapps.backend import BackendService
from omo.miniapps.package import build_zip
from omo.miniapps.service import MiniAppService

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "miniapps"


@dataclass(frozen=True)
class Example:
    folder: str
    brand: str
    description: str
    port_offset: int
    page: str
    scene: str
    # coupons: (title, tiers [[spend, off], ...]) in EUR minor units
    campaign: tuple[str, list[list[int]]]


@dataclass(frozen=True)
class Backend:
    """What `omo demo` needs to start one example's backend."""

    name: str
    script: Path
    env: dict[str, str]
    url: str
    staff_url: str
    code_url: str


EXAMPLES_SEEDED = (
    Example(
        "table_ordering",
        "Trattoria Da Nino",
        "Wood-fired pizza and fresh pasta since 1968. Order at your table with OMO.",
        2,
        "pages/menu",
        "t=12",
        ("3 € off over 20 €", [[2000, 300]]),
    ),
    Example(
        "scan_and_go",
        "Mercato Fresco",
        "The neighbourhood supermarket. Scan, pay and go.",
        3,
        "pages/scan",
        "s=1",
        ("Spend 20 €, save 3 €; spend 50 €, save 10 €", [[2000, 300], [5000, 1000]]),
    ),
)

BACKENDS: list[Backend] = []


def example_files(
    folder: Path, appid: str, backend_url: str, code: int | None = None
) -> dict[str, bytes]:
    """An example's folder as package files for `appid`, its config pointing at
    `backend_url` (what a developer's build step does before `omo miniapp publish`)."""
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            files[relative.as_posix()] = path.read_bytes()
    manifest = json.loads(files["manifest.json"])
    manifest["app_id"] = appid
    if code is not None:
        manifest["version"]["code"] = code
    files["manifest.json"] = json.dumps(manifest, indent=2).encode()
    files["config.js"] = f"window.BACKEND = {json.dumps(backend_url)};\n".encode()
    return files


async def _publish(
    service: MiniAppService, owner: uuid.UUID, app_id: uuid.UUID, folder: Path, url: str
) -> None:
    """Release the example as it is in the folder, unless the release already is exactly
    that (same files, same backend address)."""
    appid = await service.appid_of(app_id)
    versions = await service.versions(owner, app_id)
    codes = [v.code for v in versions]
    released = next((v for v in versions if v.state == "released"), None)
    if released is not None:
        kept = dict(await service.package_files(appid, str(released.id)) or {})
        kept.pop("\0appid", None)
        if kept == example_files(folder, appid, url, released.code):
            return
    code = max(codes, default=0) + 1
    version = await service.upload(app_id, build_zip(example_files(folder, appid, url, code)))
    await service.start_trial(owner, app_id, version.id)
    await service.release(owner, app_id, version.id)


async def _organisation(
    accounts: AccountService, owner: uuid.UUID, example: Example, followers: list[uuid.UUID]
) -> uuid.UUID:
    for org_id, name, _role in await accounts.organisations_of(owner):
        if name == example.brand:
            return org_id
    org = await accounts.create_organisation(owner, example.brand)
    created = await accounts.create_account(
        owner, org.id, kind="service", name=example.brand, description=example.description
    )
    await accounts.verify(created.account.id)
    for user_id in followers:
        await accounts.follow(user_id, created.account.id, scene="demo")
    return org.id


async def seed_example(
    app: FastAPI, example: Example, owner: uuid.UUID, people: list[uuid.UUID]
) -> Backend | None:
    folder = EXAMPLES / example.folder
    if not (folder / "app" / "manifest.json").exists():
        return None  # installed without the checkout's examples
    settings = app.state.settings
    service: MiniAppService = app.state.miniapps
    backends: BackendService = app.state.miniapp_backend
    url = f"http://127.0.0.1:{settings.port + example.port_offset}"
    org_id = await _organisation(app.state.accounts, owner, example, people)
    merchant = next(
        (m for m in await app.state.pay.my_merchants(owner) if m.organisation_id == str(org_id)),
        None,
    )
    if merchant is None:
        try:
            merchant = await app.state.pay.create_merchant(
                owner, str(org_id), example.brand, webhook_url=f"{url}/notify"
            )
        except ProblemError:  # private destinations not allowed: no notifications
            merchant = await app.state.pay.create_merchant(owner, str(org_id), example.brand)
        now = app.state.clock.now()
        title, tiers = example.campaign
        campaign = await app.state.coupons.create_campaign(
            issuer=str(merchant.id),
            title=title,
            kind="threshold",
            currency="EUR",
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=365),
            total_stock=10_000,
            per_user_limit=5,
            tiers=tiers,
        )
        for user_id in people:
            await app.state.coupons.claim(user_id, campaign_id=campaign.id, source="demo")
    apps = await service.apps_of_organisation(owner, org_id)
    if apps:
        app_id = apps[0].id
    else:
        app_id = (await service.register_app(owner, org_id, example.brand)).app.id
    secret = await service.reset_secret(owner, app_id)  # the demo's backend gets a fresh one
    appid = await service.appid_of(app_id)
    try:
        await backends.set_origins(app_id, [url])
    except ProblemError:
        return None  # http on loopback needs OMO_WEBHOOKS_TO_PRIVATE_NETWORKS=true
    await _publish(service, owner, app_id, folder / "app", url)
    if merchant.webhook_url and merchant.webhook_url != f"{url}/notify":
        await app.state.pay.update_merchant(owner, merchant.id, f"{url}/notify")
    code_url = service.code_url(settings.app_origin, appid, example.page, example.scene)
    staff_key = secrets.token_urlsafe(12)  # the kitchen's / guard's screen, new at each start
    staff_page = "kitchen" if example.folder == "table_ordering" else "guard"
    return Backend(
        name=example.brand,
        script=folder / "server.py",
        env={
            "OMO_URL": settings.app_origin,
            "OMO_MINIAPP_APPID": appid,
            "OMO_MINIAPP_SECRET": secret,
            "OMO_WEBHOOK_SECRET": merchant.webhook_secret,
            "EXAMPLE_PORT": str(settings.port + example.port_offset),
            "EXAMPLE_STAFF_KEY": staff_key,
        },
        url=url,
        staff_url=f"{url}/{staff_page}?key={staff_key}",
        code_url=code_url,
    )


async def seed_demo(app: FastAPI) -> None:
    identity = app.state.identity
    people = [
        await identity.ensure_person(p.phone, DEMO_PASSWORD, p.name, p.omo_id) for p in PEOPLE
    ]
    BACKENDS.clear()
    for example in EXAMPLES_SEEDED:
        backend = await seed_example(app, example, people[1], people)
        if backend is not None:
            BACKENDS.append(backend)
