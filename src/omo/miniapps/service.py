"""Mini program use cases: registration (appid + hashed secret), versions and their states,
testers, launch checks, mini program codes (QR with a page and a scene) and the URL prefixes
of a merchant's old printed codes.

Version states: uploaded → trial (listed testers may open it) → released (everyone);
releasing supersedes the previous release; rollback withdraws the current release and brings
back the one it superseded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from omo.accounts.service import EVERYONE, MANAGERS, AccountService
from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.ids import new_id
from omo.core.money import Money
from omo.core.outbound import RefusedDestination, check_destination
from omo.identity.service import IdentityService
from omo.miniapps.models import (
    Consent,
    LoginCode,
    MiniApp,
    Order,
    StorageItem,
    Tester,
    UrlPrefix,
    Version,
)
from omo.miniapps.origin import FileCache
from omo.miniapps.package import Package, PackageInvalid, load_package, read_package
from omo.pay.service import PaymentView, PayService

register("miniapps-invalid-package", 422, "The mini program package is not valid")
register("miniapps-package-too-large", 413, "The mini program package is too large")
register("miniapps-wrong-app", 422, "The package belongs to another mini program")
register("miniapps-version-exists", 409, "This version code was already uploaded")
register("miniapps-bad-state", 409, "The version is not in a state that allows this")
register("miniapps-not-released", 404, "This mini program has no released version")
register("miniapps-no-such-page", 404, "The mini program has no such page")
register("miniapps-bad-scene", 422, "The scene is not valid")
register("miniapps-bad-prefix", 422, "The link prefix is not valid")
register("miniapps-prefix-taken", 409, "This link prefix is already registered")
register("miniapps-prefix-unverified", 409, "The link prefix could not be verified")
register("miniapps-bad-credentials", 401, "Wrong appid or secret")
register("miniapps-code-invalid", 410, "The login code is unknown, used or expired")
register("miniapps-privacy-not-accepted", 403, "Accept the mini program's privacy notice first")
register("miniapps-permission-not-declared", 403, "The mini program did not ask for this")
register("miniapps-permission-denied", 403, "You did not allow this")
register("miniapps-storage-full", 413, "The mini program's storage is full")
register("miniapps-no-merchant", 409, "The organisation has no merchant account")
register("miniapps-amount-mismatch", 409, "The amount differs from the order's")
register("miniapps-order-paid", 409, "This order is already paid")

SCENE_MAX = 32
# WeChat's scene alphabet: letters, digits and these marks (no spaces, quotes or '%').
SCENE_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&'()*+,/:;=?@-._~"
)
VERIFY_TIMEOUT_SECONDS = 5.0
LOGIN_CODE_TTL = timedelta(minutes=5)
STORAGE_QUOTA_BYTES = 256 * 1024  # per person per mini program
STORAGE_VALUE_BYTES = 64 * 1024


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_scene(scene: str) -> str:
    if len(scene) > SCENE_MAX or not set(scene) <= SCENE_CHARS:
        raise ProblemError(
            "miniapps-bad-scene",
            "Use at most %(max)d letters, digits or the marks !#$&'()*+,/:;=?@-._~",
            params={"max": SCENE_MAX},
        )
    return scene


@dataclass(frozen=True)
class AppView:
    id: uuid.UUID
    organisation_id: uuid.UUID
    appid: str
    name: str
    released_version: str | None
    created_at: datetime


@dataclass(frozen=True)
class CreatedApp:
    app: AppView
    secret: str


@dataclass(frozen=True)
class VersionView:
    id: uuid.UUID
    code: int
    name: str
    state: str
    packed_size: int
    unpacked_size: int
    sha256: str
    pages: list[str]
    permissions: list[dict[str, str]]
    uploaded_at: datetime
    released_at: datetime | None


@dataclass(frozen=True)
class Launch:
    appid: str
    name: str
    organisation_id: uuid.UUID
    version_id: uuid.UUID
    version_name: str
    trial: bool
    page: str
    pages: list[str]
    permissions: list[dict[str, str]]
    window: dict[str, Any]
    verified: bool = False


@dataclass(frozen=True)
class Session:
    """What the mini program's server learns from a login code (jscode2session's shape)."""

    openid: str
    unionid: str
    session_key: str


@dataclass(frozen=True)
class ConsentView:
    appid: str
    name: str
    privacy_accepted: bool
    grants: dict[str, bool]


@dataclass(frozen=True)
class Profile:
    nickname: str
    avatar_url: str | None


@dataclass(frozen=True)
class OrderView:
    prepay_id: uuid.UUID
    order_id: str
    description: str
    merchant_name: str
    amount: Money
    status: str
    paid: Money | None
    discount: Money | None


@dataclass(frozen=True)
class PrefixView:
    id: uuid.UUID
    prefix: str
    page: str
    verify_url: str
    token: str
    verified: bool


@dataclass(frozen=True)
class Resolved:
    appid: str
    page: str
    link: str


def _version_view(version: Version) -> VersionView:
    manifest = version.manifest
    return VersionView(
        id=version.id,
        code=version.code,
        name=version.name,
        state=version.state,
        packed_size=version.packed_size,
        unpacked_size=version.unpacked_size,
        sha256=version.sha256,
        pages=list(manifest.get("pages", [])),
        permissions=[
            {"name": p["name"], "reason": p["reason"]}
            for p in manifest.get("req_permissions", [])
            if isinstance(p, dict)
        ],
        uploaded_at=version.uploaded_at,
        released_at=version.released_at,
    )


def verify_url_of(prefix: str, appid: str) -> str:
    parts = urlsplit(prefix)
    return f"{parts.scheme}://{parts.netloc}/omo-verify-{appid}.txt"


class MiniAppService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        identity: IdentityService,
        accounts: AccountService,
        *,
        public_url: str = "",
        allow_private_destinations: bool = False,
        pay: PayService | None = None,
    ) -> None:
        self.pay = pay
        self.db = db
        self.clock = clock
        self.identity = identity
        self.accounts = accounts
        self.public_url = public_url.rstrip("/")
        self.allow_private = allow_private_destinations
        self.files = FileCache()

    # -- registration ----------------------------------------------------------------------

    async def register_app(
        self, actor: uuid.UUID, organisation_id: uuid.UUID, name: str
    ) -> CreatedApp:
        """An owner or admin of the organisation registers a mini program: appid + secret.
        The secret is shown once; only its hash is kept."""
        await self.accounts.require_member(actor, organisation_id, MANAGERS)
        secret = secrets.token_hex(16)
        async with self.db.transaction() as session:
            app = MiniApp(
                id=new_id(),
                organisation_id=organisation_id,
                appid="mp" + secrets.token_hex(8),
                secret_hash=hash_secret(secret),
                name=name.strip(),
                created_at=self.clock.now(),
            )
            session.add(app)
        return CreatedApp(await self._view_of(app), secret)

    async def reset_secret(self, actor: uuid.UUID, app_id: uuid.UUID) -> str:
        secret = secrets.token_hex(16)
        async with self.db.transaction() as session:
            app = await self._managed(session, actor, app_id, MANAGERS)
            app.secret_hash = hash_secret(secret)
        return secret

    async def _managed(
        self,
        session: AsyncSession,
        actor: uuid.UUID,
        app_id: uuid.UUID,
        roles: Sequence[str] = EVERYONE,
    ) -> MiniApp:
        app = await session.get(MiniApp, app_id)
        if app is None:
            raise ProblemError("not-found", "No such mini program.")
        await self.accounts.require_member(actor, app.organisation_id, roles)
        return app

    async def require_manager(self, actor: uuid.UUID, app_id: uuid.UUID) -> None:
        async with self.db.sessions() as session:
            await self._managed(session, actor, app_id, MANAGERS)

    async def _view_of(self, app: MiniApp) -> AppView:
        async with self.db.sessions() as session:
            released = await session.scalar(
                select(Version.name).where(Version.app_id == app.id, Version.state == "released")
            )
        return AppView(app.id, app.organisation_id, app.appid, app.name, released, app.created_at)

    async def app(self, actor: uuid.UUID, app_id: uuid.UUID) -> AppView:
        async with self.db.sessions() as session:
            app = await self._managed(session, actor, app_id)
        return await self._view_of(app)

    async def apps_of_organisation(
        self, actor: uuid.UUID, organisation_id: uuid.UUID
    ) -> list[AppView]:
        await self.accounts.require_member(actor, organisation_id)
        async with self.db.sessions() as session:
            apps = list(
                await session.scalars(
                    select(MiniApp)
                    .where(MiniApp.organisation_id == organisation_id)
                    .order_by(MiniApp.created_at)
                )
            )
        return [await self._view_of(app) for app in apps]

    async def authenticate(self, appid: str, secret: str) -> uuid.UUID:
        """The mini program whose backend holds this appid and secret (401 otherwise, the
        same answer for an unknown appid and a wrong secret)."""
        async with self.db.sessions() as session:
            app = await session.scalar(select(MiniApp).where(MiniApp.appid == appid))
        expected = app.secret_hash if app else hash_secret("unknown-" + secrets.token_hex(8))
        if not hmac.compare_digest(expected, hash_secret(secret)) or app is None:
            raise ProblemError("miniapps-bad-credentials", "Check the appid and secret.")
        return app.id

    async def appid_of(self, app_id: uuid.UUID) -> str:
        async with self.db.sessions() as session:
            app = await session.get(MiniApp, app_id)
            if app is None:
                raise ProblemError("not-found", "No such mini program.")
            return app.appid

    # -- versions --------------------------------------------------------------------------

    async def upload(self, app_id: uuid.UUID, data: bytes) -> VersionView:
        """Validate a package and keep it as a new version in state `uploaded`."""
        try:
            package = load_package(data)
        except PackageInvalid as invalid:
            raise _package_problem(invalid) from None
        async with self.db.transaction() as session:
            app = await session.get(MiniApp, app_id)
            if app is None:
                raise ProblemError("not-found", "No such mini program.")
            if package.manifest.app_id != app.appid:
                raise ProblemError(
                    "miniapps-wrong-app",
                    "Set app_id in manifest.json to %(appid)s.",
                    params={"appid": app.appid},
                )
            highest = await session.scalar(
                select(func.max(Version.code)).where(Version.app_id == app_id)
            )
            if highest is not None and package.manifest.version_code <= highest:
                raise ProblemError(
                    "miniapps-version-exists",
                    "Raise version.code above %(code)d.",
                    params={"code": highest},
                )
            version = _new_version(app_id, package, data, self.clock.now())
            session.add(version)
        return _version_view(version)

    async def upload_as_member(
        self, actor: uuid.UUID, app_id: uuid.UUID, data: bytes
    ) -> VersionView:
        async with self.db.sessions() as session:
            await self._managed(session, actor, app_id, MANAGERS)
        return await self.upload(app_id, data)

    async def versions(self, actor: uuid.UUID, app_id: uuid.UUID) -> list[VersionView]:
        async with self.db.sessions() as session:
            await self._managed(session, actor, app_id)
            rows = await session.scalars(
                select(Version).where(Version.app_id == app_id).order_by(Version.code.desc())
            )
            return [_version_view(version) for version in rows]

    async def _version(
        self, session: AsyncSession, app_id: uuid.UUID, version_id: uuid.UUID
    ) -> Version:
        version = await session.get(Version, version_id)
        if version is None or version.app_id != app_id:
            raise ProblemError("not-found", "No such version.")
        return version

    async def start_trial(
        self, actor: uuid.UUID, app_id: uuid.UUID, version_id: uuid.UUID
    ) -> VersionView:
        """Listed testers may open the version; any earlier trial goes back to `uploaded`."""
        async with self.db.transaction() as session:
            await self._managed(session, actor, app_id, MANAGERS)
            version = await self._version(session, app_id, version_id)
            if version.state != "uploaded":
                raise ProblemError("miniapps-bad-state", "Only an uploaded version can be tried.")
            for other in await session.scalars(
                select(Version).where(Version.app_id == app_id, Version.state == "trial")
            ):
                other.state = "uploaded"
            version.state = "trial"
        return _version_view(version)

    async def release(
        self, actor: uuid.UUID, app_id: uuid.UUID, version_id: uuid.UUID
    ) -> VersionView:
        """Everyone gets the version; the release it replaces is kept for a rollback."""
        async with self.db.transaction() as session:
            await self._managed(session, actor, app_id, MANAGERS)
            version = await self._version(session, app_id, version_id)
            if version.state != "trial":
                raise ProblemError(
                    "miniapps-bad-state", "Let testers try the version before releasing it."
                )
            current = await session.scalar(
                select(Version).where(Version.app_id == app_id, Version.state == "released")
            )
            if current is not None:
                current.state = "superseded"
            version.state = "released"
            version.released_at = self.clock.now()
        return _version_view(version)

    async def rollback(self, actor: uuid.UUID, app_id: uuid.UUID) -> VersionView:
        """Withdraw the current release and bring back the one it superseded."""
        async with self.db.transaction() as session:
            await self._managed(session, actor, app_id, MANAGERS)
            current = await session.scalar(
                select(Version).where(Version.app_id == app_id, Version.state == "released")
            )
            previous = await session.scalar(
                select(Version)
                .where(Version.app_id == app_id, Version.state == "superseded")
                .order_by(Version.released_at.desc(), Version.code.desc())
                .limit(1)
            )
            if current is None or previous is None:
                raise ProblemError(
                    "miniapps-bad-state", "There is no earlier release to go back to."
                )
            current.state = "withdrawn"
            self.files.drop(str(current.id))
            previous.state = "released"
            previous.released_at = self.clock.now()
        return _version_view(previous)

    # -- testers ---------------------------------------------------------------------------

    async def add_tester(self, actor: uuid.UUID, app_id: uuid.UUID, omo_id: str) -> list[str]:
        person = await self.identity.find_by_omo_id(omo_id)
        async with self.db.transaction() as session:
            await self._managed(session, actor, app_id, MANAGERS)
            if await session.get(Tester, (app_id, person.user_id)) is None:
                session.add(Tester(app_id=app_id, user_id=person.user_id))
        return await self.testers(actor, app_id)

    async def remove_tester(self, actor: uuid.UUID, app_id: uuid.UUID, omo_id: str) -> None:
        person = await self.identity.find_by_omo_id(omo_id)
        async with self.db.transaction() as session:
            await self._managed(session, actor, app_id, MANAGERS)
            tester = await session.get(Tester, (app_id, person.user_id))
            if tester is not None:
                await session.delete(tester)

    async def testers(self, actor: uuid.UUID, app_id: uuid.UUID) -> list[str]:
        async with self.db.sessions() as session:
            await self._managed(session, actor, app_id)
            users = list(
                await session.scalars(select(Tester.user_id).where(Tester.app_id == app_id))
            )
        profiles = await self.identity.public_profiles(users)
        return sorted(profile.omo_id for profile in profiles.values())

    # -- launch ----------------------------------------------------------------------------

    async def launch(
        self, appid: str, page: str | None, user_id: uuid.UUID | None, *, trial: bool = False
    ) -> Launch:
        """What opens when a person scans a code: the released version for everyone, the
        trial version only for its listed testers."""
        async with self.db.sessions() as session:
            app = await session.scalar(select(MiniApp).where(MiniApp.appid == appid))
            if app is None:
                raise ProblemError("not-found", "No such mini program.")
            state = "trial" if trial else "released"
            if trial and (user_id is None or await session.get(Tester, (app.id, user_id)) is None):
                raise ProblemError("miniapps-not-released", "Only its testers may open a trial.")
            version = await session.scalar(
                select(Version)
                .where(Version.app_id == app.id, Version.state == state)
                .options(defer(Version.package))  # on every launch: not the 1 MiB package
            )
            if version is None:
                raise ProblemError("miniapps-not-released", "Try again once it is released.")
        view = _version_view(version)
        chosen = page or view.pages[0]
        if chosen not in view.pages:
            raise ProblemError("miniapps-no-such-page", "Check the page in the code.")
        return Launch(
            appid=app.appid,
            name=app.name,
            organisation_id=app.organisation_id,
            version_id=version.id,
            version_name=version.name,
            trial=trial,
            page=chosen,
            pages=view.pages,
            permissions=view.permissions,
            window=dict(version.manifest.get("window") or {}),
            verified=app.verified_at is not None,
        )

    async def package_files(self, appid: str, version_id: str) -> dict[str, bytes] | None:
        """A version's files for the package origin (withdrawn versions are gone)."""
        cached = self.files.get(version_id)
        if cached is not None and cached.get("\0appid") == appid.encode():
            return cached
        try:
            key = uuid.UUID(version_id)
        except ValueError:
            return None
        async with self.db.sessions() as session:
            row = await session.execute(
                select(Version.package, Version.state)
                .join(MiniApp, MiniApp.id == Version.app_id)
                .where(Version.id == key, MiniApp.appid == appid)
            )
            found = row.first()
        if found is None or found.state == "withdrawn":
            return None
        files = dict(read_package(found.package))
        files["\0appid"] = appid.encode()  # the key no package path can take
        self.files.put(version_id, files)
        return files

    # -- consent, permissions, storage ----------------------------------------------------

    async def _app_by_appid(self, session: AsyncSession, appid: str) -> MiniApp:
        app = await session.scalar(select(MiniApp).where(MiniApp.appid == appid))
        if app is None:
            raise ProblemError("not-found", "No such mini program.")
        return app

    async def consent(self, appid: str, user_id: uuid.UUID) -> ConsentView:
        async with self.db.sessions() as session:
            app = await self._app_by_appid(session, appid)
            row = await session.get(Consent, (app.id, user_id))
        return ConsentView(
            appid=app.appid,
            name=app.name,
            privacy_accepted=bool(row and row.privacy_accepted_at),
            grants=dict(row.grants) if row else {},
        )

    async def _consent_row(
        self, session: AsyncSession, app: MiniApp, user_id: uuid.UUID
    ) -> Consent:
        row = await session.get(Consent, (app.id, user_id), with_for_update=True)
        if row is None:
            row = Consent(
                app_id=app.id,
                user_id=user_id,
                privacy_accepted_at=None,
                grants={},
                updated_at=self.clock.now(),
            )
            session.add(row)
        return row

    async def accept_privacy(
        self, appid: str, user_id: uuid.UUID, *, trial: bool = False
    ) -> ConsentView:
        """The person read the privacy notice (what the mini program collects and why, from
        its manifest) and accepts it: the bridge works from now on."""
        await self.launch(appid, None, user_id, trial=trial)
        async with self.db.transaction() as session:
            app = await self._app_by_appid(session, appid)
            row = await self._consent_row(session, app, user_id)
            row.privacy_accepted_at = row.privacy_accepted_at or self.clock.now()
            row.updated_at = self.clock.now()
        return await self.consent(appid, user_id)

    async def set_grant(
        self,
        appid: str,
        user_id: uuid.UUID,
        permission: str,
        granted: bool,
        *,
        trial: bool = False,
    ) -> ConsentView:
        """The person's answer to the prompt (or a change in settings). Only permissions the
        running version's manifest asks for can be granted."""
        launch = await self.launch(appid, None, user_id, trial=trial)
        if granted and permission not in [p["name"] for p in launch.permissions]:
            raise ProblemError(
                "miniapps-permission-not-declared", "Its manifest does not ask for it."
            )
        async with self.db.transaction() as session:
            app = await self._app_by_appid(session, appid)
            row = await self._consent_row(session, app, user_id)
            if row.privacy_accepted_at is None:
                raise ProblemError("miniapps-privacy-not-accepted", "Read and accept it first.")
            row.grants = {**row.grants, permission: granted}
            row.updated_at = self.clock.now()
        return await self.consent(appid, user_id)

    async def revoke(self, appid: str, user_id: uuid.UUID, permission: str) -> ConsentView:
        async with self.db.transaction() as session:
            app = await self._app_by_appid(session, appid)
            row = await session.get(Consent, (app.id, user_id), with_for_update=True)
            if row is not None and permission in row.grants:
                row.grants = {k: v for k, v in row.grants.items() if k != permission}
                row.updated_at = self.clock.now()
        return await self.consent(appid, user_id)

    async def consents_of(self, user_id: uuid.UUID) -> list[ConsentView]:
        """Every mini program the person accepted or granted something (app settings)."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Consent, MiniApp)
                .join(MiniApp, MiniApp.id == Consent.app_id)
                .where(Consent.user_id == user_id)
                .order_by(MiniApp.name)
            )
            return [
                ConsentView(
                    app.appid,
                    app.name,
                    consent.privacy_accepted_at is not None,
                    dict(consent.grants),
                )
                for consent, app in rows
            ]

    async def require(self, appid: str, user_id: uuid.UUID, permission: str | None) -> MiniApp:
        """A bridge call may go on: privacy notice accepted and, if the call needs a
        permission, the person granted it."""
        async with self.db.sessions() as session:
            app = await self._app_by_appid(session, appid)
            row = await session.get(Consent, (app.id, user_id))
        if row is None or row.privacy_accepted_at is None:
            raise ProblemError("miniapps-privacy-not-accepted", "Read and accept it first.")
        if permission is not None and row.grants.get(permission) is not True:
            raise ProblemError("miniapps-permission-denied", "Allow it in the prompt or settings.")
        return app

    async def user_profile(self, appid: str, user_id: uuid.UUID) -> Profile:
        """getUserProfile: nickname and avatar, only with the `profile` grant."""
        await self.require(appid, user_id, "profile")
        profiles = await self.identity.public_profiles([user_id])
        profile = profiles[user_id]
        avatar = f"/api/v1/identity/avatars/{profile.avatar_id}" if profile.avatar_id else None
        return Profile(nickname=profile.display_name, avatar_url=avatar)

    async def storage_get(self, appid: str, user_id: uuid.UUID, key: str) -> str | None:
        app = await self.require(appid, user_id, None)
        async with self.db.sessions() as session:
            item = await session.get(StorageItem, (app.id, user_id, key))
            return item.value if item else None

    async def storage_set(self, appid: str, user_id: uuid.UUID, key: str, value: str) -> int:
        """Store a value; the person's total for this mini program stays within the quota.
        Returns the bytes used."""
        app = await self.require(appid, user_id, None)
        size = len(key.encode()) + len(value.encode())
        if size > STORAGE_VALUE_BYTES:
            raise ProblemError(
                "miniapps-storage-full",
                "Store at most %(kib)d KiB per key.",
                params={"kib": STORAGE_VALUE_BYTES // 1024},
            )
        async with self.db.transaction() as session:
            item = await session.get(StorageItem, (app.id, user_id, key), with_for_update=True)
            used = await session.scalar(
                select(func.coalesce(func.sum(StorageItem.size), 0)).where(
                    StorageItem.app_id == app.id, StorageItem.user_id == user_id
                )
            )
            total = int(used or 0) - (item.size if item else 0) + size
            if total > STORAGE_QUOTA_BYTES:
                raise ProblemError(
                    "miniapps-storage-full",
                    "A mini program may keep %(kib)d KiB per person.",
                    params={"kib": STORAGE_QUOTA_BYTES // 1024},
                )
            if item is None:
                session.add(
                    StorageItem(app_id=app.id, user_id=user_id, key=key, value=value, size=size)
                )
            else:
                item.value, item.size = value, size
        return total

    async def storage_remove(self, appid: str, user_id: uuid.UUID, key: str) -> None:
        app = await self.require(appid, user_id, None)
        async with self.db.transaction() as session:
            item = await session.get(StorageItem, (app.id, user_id, key))
            if item is not None:
                await session.delete(item)

    # -- payments --------------------------------------------------------------------------

    def _pay(self) -> PayService:
        if self.pay is None:
            raise ProblemError("miniapps-no-merchant", "Payments are not available.")
        return self.pay

    async def _merchant(self, app: MiniApp) -> tuple[uuid.UUID, uuid.UUID]:
        found = await self._pay().organisation_merchant(str(app.organisation_id))
        if found is None:
            raise ProblemError("miniapps-no-merchant", "Open a merchant account for it first.")
        return found

    @staticmethod
    def _pay_order_id(appid: str, order_id: str) -> str:
        return f"{appid}:{order_id}"

    async def create_order(
        self, app_id: uuid.UUID, order_id: str, money: Money, description: str
    ) -> OrderView:
        """The mini program's server creates an order (through pay, on its organisation's
        merchant account); the frame pays it with requestPayment and the prepay id."""
        async with self.db.sessions() as session:
            app = await session.get(MiniApp, app_id)
            assert app is not None
            existing = await session.scalar(
                select(Order).where(Order.app_id == app_id, Order.order_id == order_id)
            )
        merchant_id, owner = await self._merchant(app)
        result = await self._pay().create_order_qr(
            owner, merchant_id, money, self._pay_order_id(app.appid, order_id)
        )
        if existing is None:
            async with self.db.transaction() as session:
                existing = Order(
                    id=new_id(),
                    app_id=app_id,
                    order_id=order_id,
                    merchant_id=merchant_id,
                    payment_id=result.payment.id,
                    amount_minor=money.amount_minor,
                    currency=money.currency,
                    description=description,
                    created_at=self.clock.now(),
                )
                session.add(existing)
        return _order_view(existing, result.payment)

    async def _order_payment(self, app: MiniApp, order: Order) -> PaymentView:
        merchant_id, owner = await self._merchant(app)
        return await self._pay().order(
            owner, merchant_id, self._pay_order_id(app.appid, order.order_id)
        )

    async def query_order(self, app_id: uuid.UUID, order_id: str) -> OrderView:
        async with self.db.sessions() as session:
            app = await session.get(MiniApp, app_id)
            order = await session.scalar(
                select(Order).where(Order.app_id == app_id, Order.order_id == order_id)
            )
        if app is None or order is None:
            raise ProblemError("not-found", "No such order.")
        return _order_view(order, await self._order_payment(app, order))

    async def refund_order(
        self, app_id: uuid.UUID, order_id: str, refund_id: str, money: Money
    ) -> OrderView:
        async with self.db.sessions() as session:
            app = await session.get(MiniApp, app_id)
            order = await session.scalar(
                select(Order).where(Order.app_id == app_id, Order.order_id == order_id)
            )
        if app is None or order is None:
            raise ProblemError("not-found", "No such order.")
        merchant_id, owner = await self._merchant(app)
        result = await self._pay().refund(
            owner, merchant_id, self._pay_order_id(app.appid, order_id), refund_id, money
        )
        return _order_view(order, result.payment)

    async def _order_in(self, appid: str, prepay_id: uuid.UUID) -> tuple[MiniApp, Order]:
        """The order, only inside the mini program that created it."""
        async with self.db.sessions() as session:
            app = await self._app_by_appid(session, appid)
            order = await session.get(Order, prepay_id)
        if order is None or order.app_id != app.id:
            raise ProblemError("not-found", "No such order.")
        return app, order

    async def order_for_payer(
        self, appid: str, user_id: uuid.UUID, prepay_id: uuid.UUID
    ) -> OrderView:
        """What the host's payment sheet shows: merchant, amount, description, status."""
        await self.require(appid, user_id, None)
        app, order = await self._order_in(appid, prepay_id)
        return _order_view(order, await self._order_payment(app, order))

    async def pay_order(
        self,
        appid: str,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        prepay_id: uuid.UUID,
        pin: str | None,
        expected: Money | None,
        coupon: uuid.UUID | None = None,
    ) -> OrderView:
        """requestPayment, confirmed by the person with their PIN in the host's sheet. The
        amount is the order's, created by the mini program's server: an amount sent from
        the frame that differs is refused; a paid order is refused when presented again."""
        await self.require(appid, user_id, None)
        app, order = await self._order_in(appid, prepay_id)
        amount = Money(order.amount_minor, order.currency)
        if expected is not None and expected != amount:
            raise ProblemError("miniapps-amount-mismatch", "Pay the amount of the order.")
        payment = await self._order_payment(app, order)
        if payment.status == "succeeded":
            raise ProblemError("miniapps-order-paid", "Ask the mini program for a new order.")
        token = await self._pay().qr_token_of(payment.id)
        if token is None:
            raise ProblemError("not-found", "No such order.")
        result = await self._pay().pay_qr(
            user_id, session_id, token, f"mp-{prepay_id}", pin, amount, coupon or "auto"
        )
        return _order_view(order, result.payment)

    # -- login -----------------------------------------------------------------------------

    async def login_code(self, appid: str, user_id: uuid.UUID, *, trial: bool = False) -> str:
        """The bridge's `login`: a one-time code for this person and mini program, valid
        5 minutes. It names nobody: only the mini program's server, holding the secret, can
        turn it into an openid."""
        launch = await self.launch(appid, None, user_id, trial=trial)
        await self.require(appid, user_id, None)
        code = secrets.token_urlsafe(24)
        async with self.db.transaction() as session:
            app_id = await session.scalar(select(MiniApp.id).where(MiniApp.appid == launch.appid))
            assert app_id is not None
            session.add(
                LoginCode(
                    code_hash=hash_secret(code),
                    app_id=app_id,
                    user_id=user_id,
                    expires_at=self.clock.now() + LOGIN_CODE_TTL,
                    used_at=None,
                )
            )
        return code

    async def exchange_code(self, app_id: uuid.UUID, code: str) -> Session:
        """code → openid (per mini program), unionid (per organisation) and a fresh session
        key. A code is good once, for the mini program it was issued to, for 5 minutes."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await session.get(LoginCode, hash_secret(code), with_for_update=True)
            if row is None or row.app_id != app_id or row.used_at is not None:
                raise ProblemError("miniapps-code-invalid", "Ask the mini program for a new code.")
            if row.expires_at <= now:
                raise ProblemError("miniapps-code-invalid", "Ask the mini program for a new code.")
            row.used_at = now
            app = await session.get(MiniApp, app_id)
            assert app is not None
            user_id, appid, organisation = row.user_id, app.appid, app.organisation_id
        return Session(
            openid=await self.identity.openid(f"miniapp:{appid}", user_id),
            unionid=await self.identity.unionid(str(organisation), user_id),
            session_key=base64.b64encode(secrets.token_bytes(16)).decode(),
        )

    # -- codes -----------------------------------------------------------------------------

    def code_url(self, base_url: str, appid: str, page: str, scene: str) -> str:
        """What a mini program code holds: the host page for the page, with the scene."""
        check_scene(scene)
        base = self.public_url or base_url.rstrip("/")
        url = f"{base}/mp/{appid}/{quote(page, safe='/')}"
        return f"{url}?scene={quote(scene, safe='')}" if scene else url

    async def code_for(self, app_id: uuid.UUID, page: str, scene: str, base_url: str) -> str:
        """The URL of a code for one released page (checked against the release)."""
        check_scene(scene)
        appid = await self.appid_of(app_id)
        launch = await self.launch(appid, page or None, None)
        return self.code_url(base_url, appid, launch.page, scene)

    async def code_for_member(
        self, actor: uuid.UUID, app_id: uuid.UUID, page: str, scene: str, base_url: str
    ) -> str:
        async with self.db.sessions() as session:
            await self._managed(session, actor, app_id)
        return await self.code_for(app_id, page, scene, base_url)

    # -- URL prefixes of old printed codes -------------------------------------------------

    async def add_prefix(
        self, actor: uuid.UUID, app_id: uuid.UUID, prefix: str, page: str
    ) -> PrefixView:
        parts = urlsplit(prefix)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username
            or parts.password
            or parts.fragment
            or len(prefix) > 512
            or not parts.path.startswith("/")
        ):
            raise ProblemError(
                "miniapps-bad-prefix", "Give an http(s) link such as https://shop.example/t/."
            )
        async with self.db.transaction() as session:
            app = await self._managed(session, actor, app_id, MANAGERS)
            if await session.scalar(select(UrlPrefix.id).where(UrlPrefix.prefix == prefix)):
                raise ProblemError("miniapps-prefix-taken", "Another mini program registered it.")
            row = UrlPrefix(
                id=new_id(),
                app_id=app_id,
                prefix=prefix,
                page=page,
                token=secrets.token_hex(16),
                verified_at=None,
                created_at=self.clock.now(),
            )
            session.add(row)
            appid = app.appid
        return _prefix_view(row, appid)

    async def prefixes(self, actor: uuid.UUID, app_id: uuid.UUID) -> list[PrefixView]:
        async with self.db.sessions() as session:
            app = await self._managed(session, actor, app_id)
            rows = await session.scalars(
                select(UrlPrefix).where(UrlPrefix.app_id == app_id).order_by(UrlPrefix.created_at)
            )
            return [_prefix_view(row, app.appid) for row in rows]

    async def verify_prefix(
        self, actor: uuid.UUID, app_id: uuid.UUID, prefix_id: uuid.UUID
    ) -> PrefixView:
        """Ownership proof: the prefix's site serves /omo-verify-<appid>.txt holding the
        token we gave, as WeChat asks for its 'scan ordinary links' rule."""
        async with self.db.sessions() as session:
            app = await self._managed(session, actor, app_id, MANAGERS)
            row = await session.get(UrlPrefix, prefix_id)
            if row is None or row.app_id != app_id:
                raise ProblemError("not-found", "No such link prefix.")
            url, token, appid = verify_url_of(row.prefix, app.appid), row.token, app.appid
        if not await self._serves_token(url, token):
            raise ProblemError(
                "miniapps-prefix-unverified",
                "Serve the token at %(url)s, then try again.",
                params={"url": url},
            )
        async with self.db.transaction() as session:
            row = await session.get(UrlPrefix, prefix_id)
            assert row is not None
            row.verified_at = self.clock.now()
        return _prefix_view(row, appid)

    async def _serves_token(self, url: str, token: str) -> bool:
        try:
            await check_destination(url, allow_private=self.allow_private)
            async with httpx.AsyncClient(
                timeout=VERIFY_TIMEOUT_SECONDS, follow_redirects=False
            ) as http:
                response = await http.get(url)
        except (RefusedDestination, httpx.HTTPError):
            return False
        return response.status_code == 200 and response.text.strip() == token

    async def resolve_link(self, link: str) -> Resolved:
        """A scanned link under a verified prefix → the mini program page to open, with the
        original link passed on (longest prefix wins)."""
        if len(link) > 2048:
            raise ProblemError("not-found", "No mini program answers this link.")
        candidates = {link[:end] for end in range(1, min(len(link), 512) + 1)}
        async with self.db.sessions() as session:
            row = await session.execute(
                select(UrlPrefix.page, MiniApp.appid)
                .join(MiniApp, MiniApp.id == UrlPrefix.app_id)
                .where(UrlPrefix.prefix.in_(candidates), UrlPrefix.verified_at.is_not(None))
                .order_by(func.length(UrlPrefix.prefix).desc())
                .limit(1)
            )
            found = row.first()
        if found is None:
            raise ProblemError("not-found", "No mini program answers this link.")
        return Resolved(appid=found.appid, page=found.page, link=link)


def _order_view(order: Order, payment: PaymentView) -> OrderView:
    done = payment.status == "succeeded"
    return OrderView(
        prepay_id=order.id,
        order_id=order.order_id,
        description=order.description,
        merchant_name=payment.merchant_name,
        amount=Money(order.amount_minor, order.currency),
        status=payment.status,
        paid=payment.paid if done else None,
        discount=payment.discount if done else None,
    )


def _prefix_view(row: UrlPrefix, appid: str) -> PrefixView:
    return PrefixView(
        id=row.id,
        prefix=row.prefix,
        page=row.page,
        verify_url=verify_url_of(row.prefix, appid),
        token=row.token,
        verified=row.verified_at is not None,
    )


def _new_version(app_id: uuid.UUID, package: Package, data: bytes, now: datetime) -> Version:
    manifest = package.manifest
    normalised = dict(manifest.raw)
    normalised["window"] = manifest.window
    normalised["req_permissions"] = [
        {"name": p.name, "reason": p.reason} for p in manifest.permissions
    ]
    return Version(
        id=new_id(),
        app_id=app_id,
        code=manifest.version_code,
        name=manifest.version_name,
        manifest=normalised,
        package=data,
        sha256=hashlib.sha256(data).hexdigest(),
        packed_size=package.packed_size,
        unpacked_size=package.unpacked_size,
        state="uploaded",
        uploaded_at=now,
        released_at=None,
    )


def _package_problem(invalid: PackageInvalid) -> ProblemError:
    problems = [{"code": v.code, "where": v.where} for v in invalid.violations[:50]]
    if invalid.too_large:
        return ProblemError(
            "miniapps-package-too-large",
            "A package may hold at most 1 MiB, packed or unpacked.",
            problems=problems,
        )
    return ProblemError(
        "miniapps-invalid-package",
        "Fix the problems listed, then upload again.",
        problems=problems,
    )
