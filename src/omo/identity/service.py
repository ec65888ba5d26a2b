"""Identity use cases: sign-up, phone verification, sessions, QR web login, profile, pseudonyms.

Every rule about people lives here. Phone numbers and password hashes never leave this module;
other contexts get `PublicProfile` and pseudonymous ids.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from babel import Locale
from PIL import Image, UnidentifiedImageError
from sqlalchemy import ColumnElement, ScalarSelect, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from omo.core import audit
from omo.core.audit import AuditRecord, record_audit
from omo.core.auth import Principal
from omo.core.background import run_every, stop_task
from omo.core.broker import Broker
from omo.core.clock import Clock
from omo.core.config import Settings
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.events import DomainEvent, record_event
from omo.core.formatting import is_time_zone
from omo.core.i18n import SUPPORTED, translations
from omo.core.ids import new_id
from omo.core.ratelimit import Limit, RateLimiter
from omo.identity import events
from omo.identity.models import (
    Avatar,
    DeviceSession,
    Pseudonym,
    QrLoginTicket,
    User,
    VerificationCode,
)
from omo.identity.sms import SmsSender

register("invalid-phone", 422, "That is not a valid phone number")
register("weak-password", 422, "Choose a stronger password")
register("phone-taken", 409, "This phone number already has an account")
register("code-invalid", 400, "That code is not right")
register("code-expired", 410, "That code has expired or was already used")
register("code-attempts-exhausted", 429, "Too many wrong codes")
register("invalid-credentials", 401, "Wrong phone number or password")
register("phone-not-verified", 403, "Verify your phone number first")
register("device-not-found", 404, "No such device")
register("qr-ticket-not-found", 404, "No such login code")
register("qr-ticket-expired", 410, "This login code has expired")
register("qr-ticket-used", 409, "This login code was already used")
register("invalid-omo-id", 422, "That OMO ID cannot be used")
register("omo-id-taken", 409, "That OMO ID is taken")
register("omo-id-change-too-soon", 409, "Your OMO ID can be changed once a year")
register("invalid-avatar", 422, "That image cannot be used as an avatar")
register("avatar-too-large", 413, "That image is too large")
register("invalid-region", 422, "Unknown region")
register("invalid-locale", 422, "Unsupported language")
register("invalid-time-zone", 422, "Unknown time zone")
register("person-not-found", 404, "No one has that OMO ID")
register("wrong-password", 403, "That is not your password")

LOGIN_PER_PHONE = Limit("login-phone", 10, 15 * 60)
LOGIN_PER_ADDRESS = Limit("login-address", 30, 60)
CODE_PER_PHONE_BURST = Limit("code-phone-burst", 1, 60)
CODE_PER_PHONE = Limit("code-phone", 5, 60 * 60)
CODE_PER_ADDRESS = Limit("code-address", 20, 60 * 60)
QR_TICKETS_PER_ADDRESS = Limit("qr-ticket-address", 20, 60)
# Erasure asks for the password again: a stolen session must not guess it here either.
ERASE_PER_PERSON = Limit("erase-person", 5, 15 * 60)

OMO_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{5,19}$")
OMO_ID_CHANGE_INTERVAL = timedelta(days=365)
AVATAR_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
AVATAR_MAX_SIDE = 4096
AVATAR_STORED_SIDE = 512
logger = logging.getLogger("omo.identity")
SESSION_TOUCH_INTERVAL = timedelta(minutes=5)
# "Last seen" (and the sliding expiry that follows it) is written off the request path: the
# sessions seen are noted in memory and written in one statement every few seconds, and when
# the process stops. A session whose expiry is this close is written at once instead, so no
# other node can find it expired while this one still holds its note.
SESSION_TOUCH_FLUSH_SECONDS = 10.0
SESSION_TOUCH_AT_ONCE_WITHIN = timedelta(days=1)
ERASED_NAME = "—"  # shown wherever an erased person once appeared; the same in every language

# Another context may refuse an erasure that would lose the person something they cannot get
# back (money in a wallet): it raises a ProblemError saying what to do first. Contexts append
# theirs at start-up, so identity needs to know none of them.
ErasureGuard = Callable[[uuid.UUID], Awaitable[None]]

# Run on every authenticated request (and every payment): built once, as plain columns.
_SESSION_OF_TOKEN = (
    select(
        DeviceSession.id,
        DeviceSession.user_id,
        DeviceSession.revoked_at,
        DeviceSession.expires_at,
        DeviceSession.last_seen_at,
        User.locale,
    )
    .join(User, User.id == DeviceSession.user_id)
    .where(DeviceSession.token_hash == bindparam("hash"))
)
# A later "last seen" only: notes from several nodes, written in any order, never go back.
_TOUCH_SESSION = (
    update(DeviceSession)
    .where(DeviceSession.id == bindparam("session"), DeviceSession.last_seen_at < bindparam("seen"))
    .values(last_seen_at=bindparam("seen"), expires_at=bindparam("until"))
)
_ACTIVE_SESSION = select(DeviceSession.expires_at).where(
    DeviceSession.id == bindparam("session"),
    DeviceSession.user_id == bindparam("user"),
    DeviceSession.revoked_at.is_(None),
)
QR_STATUS_CHANNEL = "identity.qr-ticket."


@dataclass(frozen=True, slots=True)
class PublicProfile:
    """What other contexts and other people may know about a person."""

    user_id: uuid.UUID
    omo_id: str
    display_name: str
    region: str | None
    avatar_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class OwnProfile:
    user_id: uuid.UUID
    phone_e164: str
    omo_id: str
    omo_id_changeable_from: datetime | None
    display_name: str
    region: str | None
    locale: str | None
    avatar_id: uuid.UUID | None
    created_at: datetime
    time_zone: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedSession:
    token: str
    session_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Device:
    id: uuid.UUID
    kind: str
    device_name: str
    user_agent: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class QrTicket:
    id: uuid.UUID
    scan_code: str
    poll_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class QrTicketView:
    """What the phone is shown before it confirms: which browser is asking."""

    id: uuid.UUID
    status: str
    browser_user_agent: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class QrClaim:
    status: str
    session: IssuedSession | None = None


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def parse_phone(raw: str) -> str:
    """E.164 or refusal. A leading + is required: we do not guess a country."""
    try:
        number = phonenumbers.parse(raw.strip(), None)
    except phonenumbers.NumberParseException as error:
        raise ProblemError(
            "invalid-phone", "Write the number with + and its country code."
        ) from error
    if not phonenumbers.is_valid_number(number):
        raise ProblemError("invalid-phone", "Write the number with + and its country code.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_password_strength(password: str) -> None:
    if len(password) < 8:
        raise ProblemError("weak-password", "Use at least 8 characters.")
    if len(password) > 128:
        raise ProblemError("weak-password", "Use at most 128 characters.")
    if len(set(password)) < 4:
        raise ProblemError("weak-password", "Use more different characters.")


def normalise_omo_id(raw: str) -> str:
    omo_id = raw.strip().lower()
    if not OMO_ID_PATTERN.match(omo_id):
        raise ProblemError(
            "invalid-omo-id",
            "Use 6 to 20 letters, digits, _ or -, starting with a letter.",
        )
    return omo_id


def _is_region(code: str) -> bool:
    return len(code) == 2 and code.isalpha() and code.upper() in Locale("en").territories


class IdentityService:
    """The identity context's use cases over one database, clock and set of collaborators."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        sms: SmsSender,
        limiter: RateLimiter,
        broker: Broker,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.sms = sms
        self.limiter = limiter
        self.broker = broker
        self._secret = settings.resolved_secret_key().encode()
        self._hasher = PasswordHasher()
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self.erasure_guards: list[ErasureGuard] = []
        # Sessions seen since the last flush (session id -> when), and the ones being written.
        self._touches: dict[uuid.UUID, datetime] = {}
        self._flushing: dict[uuid.UUID, datetime] = {}
        self._touch_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._touch_task = run_every(
            SESSION_TOUCH_FLUSH_SECONDS, self.flush_touches, "identity-last-seen"
        )

    async def stop(self) -> None:
        """Writes the last notes of "last seen"; a failure is logged with what was lost."""
        await stop_task(self._touch_task)
        self._touch_task = None
        try:
            await self.flush_touches()
        except Exception:
            logger.exception(
                "last-seen times of %d sessions could not be written at shutdown",
                len(self._touches),
            )

    # -- passwords and secrets -------------------------------------------------------------

    async def _hash_password(self, password: str) -> str:
        # argon2 takes tens of milliseconds of CPU by design; keep the event loop free.
        return await to_thread.run_sync(self._hasher.hash, password)

    async def _password_matches(self, stored_hash: str, password: str) -> bool:
        try:
            return await to_thread.run_sync(self._hasher.verify, stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _code_hash(self, phone: str, purpose: str, code: str) -> str:
        message = f"{purpose}:{phone}:{code}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _record(self, session: AsyncSession, event: DomainEvent) -> None:
        record_event(session, event, self.clock.now())

    # -- sign-up and verification ----------------------------------------------------------

    async def sign_up(
        self, phone_raw: str, password: str, display_name: str, client_address: str, locale: str
    ) -> None:
        """Create (or refresh, while unverified) an account and text it a verification code."""
        phone = parse_phone(phone_raw)
        check_password_strength(password)
        password_hash = await self._hash_password(password)
        now = self.clock.now()
        async with self.db.transaction() as session:
            user = await session.scalar(select(User).where(User.phone_e164 == phone))
            if user is not None and user.phone_verified_at is not None:
                raise ProblemError("phone-taken", "Log in instead, or reset your password.")
            if user is None:
                region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
                user = User(
                    id=new_id(),
                    phone_e164=phone,
                    password_hash=password_hash,
                    display_name=display_name.strip(),
                    region=region if region and _is_region(region) else None,
                    locale=locale if locale in SUPPORTED else None,
                    omo_id=await self._fresh_omo_id(session),
                    created_at=now,
                )
                session.add(user)
                self._record(session, events.PersonSignedUp(user_id=user.id, region=user.region))
            else:
                user.password_hash = password_hash
                user.display_name = display_name.strip()
        await self.send_code(phone, "verify", client_address, locale)

    async def _fresh_omo_id(self, session: AsyncSession) -> str:
        while True:
            candidate = "omo_" + secrets.token_hex(5)
            taken = await session.scalar(select(User.id).where(User.omo_id == candidate))
            if taken is None:
                return candidate

    async def send_code(
        self, phone_raw: str, purpose: str, client_address: str, locale: str
    ) -> None:
        phone = parse_phone(phone_raw)
        await self.limiter.hit(CODE_PER_ADDRESS, client_address)
        await self.limiter.hit(CODE_PER_PHONE_BURST, phone)
        await self.limiter.hit(CODE_PER_PHONE, phone)
        code = f"{secrets.randbelow(10**6):06d}"
        now = self.clock.now()
        ttl = self.settings.verification_code_ttl_seconds
        async with self.db.transaction() as session:
            # A new code replaces any earlier one: only the latest text is valid.
            await session.execute(
                update(VerificationCode)
                .where(
                    VerificationCode.phone_e164 == phone,
                    VerificationCode.purpose == purpose,
                    VerificationCode.consumed_at.is_(None),
                )
                .values(consumed_at=now)
            )
            session.add(
                VerificationCode(
                    id=new_id(),
                    phone_e164=phone,
                    purpose=purpose,
                    code_hash=self._code_hash(phone, purpose, code),
                    attempts=0,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl),
                )
            )
        minutes = ttl // 60
        text = translations(locale).ngettext(
            "Your OMO code is %(code)s. It expires in %(minutes)d minute. Never share it.",
            "Your OMO code is %(code)s. It expires in %(minutes)d minutes. Never share it.",
            minutes,
        ) % {"code": code, "minutes": minutes}
        await self.sms.send(phone, text)

    async def verify_phone(self, phone_raw: str, code: str) -> None:
        phone = parse_phone(phone_raw)
        await self._consume_code(phone, "verify", code)
        async with self.db.transaction() as session:
            user = await session.scalar(select(User).where(User.phone_e164 == phone))
            if user is None:
                raise ProblemError("code-expired", "Sign up again to get a new code.")
            if user.phone_verified_at is None:
                user.phone_verified_at = self.clock.now()
                self._record(session, events.PhoneVerified(user_id=user.id))

    async def _consume_code(self, phone: str, purpose: str, code: str) -> None:
        """Single use, expiring, and a bounded number of guesses per code.

        A wrong guess is committed on its own, so the count survives the refusal.
        """
        now = self.clock.now()
        async with self.db.transaction() as session:
            current = await session.scalar(
                select(VerificationCode)
                .where(
                    VerificationCode.phone_e164 == phone,
                    VerificationCode.purpose == purpose,
                    VerificationCode.consumed_at.is_(None),
                )
                .order_by(VerificationCode.id.desc())
                .limit(1)
            )
            if current is None or current.expires_at <= now:
                raise ProblemError("code-expired", "Ask for a new code.")
            if current.attempts >= self.settings.verification_code_max_attempts:
                raise ProblemError("code-attempts-exhausted", "Ask for a new code.")
            expected = self._code_hash(phone, purpose, code.strip())
            if hmac.compare_digest(expected, current.code_hash):
                claimed = await session.execute(
                    update(VerificationCode)
                    .where(
                        VerificationCode.id == current.id, VerificationCode.consumed_at.is_(None)
                    )
                    .values(consumed_at=now)
                )
                if claimed.rowcount == 1:  # type: ignore[attr-defined]
                    return
                raise ProblemError("code-expired", "Ask for a new code.")
            current.attempts += 1
        raise ProblemError("code-invalid", "Check the code in your latest text message.")

    # -- sessions --------------------------------------------------------------------------

    async def log_in(
        self,
        phone_raw: str,
        password: str,
        *,
        device_name: str,
        kind: str,
        user_agent: str,
        client_address: str,
    ) -> IssuedSession:
        await self.limiter.hit(LOGIN_PER_ADDRESS, client_address)
        try:
            phone = parse_phone(phone_raw)
        except ProblemError:
            await self._password_matches(self._dummy_hash, password)
            raise
        await self.limiter.hit(LOGIN_PER_PHONE, phone)
        async with self.db.sessions() as session:
            user = await session.scalar(select(User).where(User.phone_e164 == phone))
        # The same work whether or not the phone exists, so timing does not reveal accounts.
        matches = await self._password_matches(
            user.password_hash if user else self._dummy_hash, password
        )
        if user is None or not matches:
            if user is not None:
                async with self.db.transaction() as session:
                    record_audit(
                        session,
                        account_id=user.id,
                        action=audit.LOGIN_FAILED,
                        occurred_at=self.clock.now(),
                        client_address=client_address,
                    )
            raise ProblemError("invalid-credentials", "Check the number and the password.")
        if user.phone_verified_at is None:
            raise ProblemError("phone-not-verified", "Enter the code we texted you.")
        return await self._issue_session(
            user.id,
            kind=kind,
            device_name=device_name,
            user_agent=user_agent,
            client_address=client_address,
        )

    async def _issue_session(
        self,
        user_id: uuid.UUID,
        *,
        kind: str,
        device_name: str,
        user_agent: str,
        client_address: str,
        session: AsyncSession | None = None,
        audit_action: str = audit.LOGIN,
    ) -> IssuedSession:
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires_at = now + timedelta(days=self.settings.session_ttl_days)
        row = DeviceSession(
            id=new_id(),
            user_id=user_id,
            token_hash=_sha256(token),
            kind=kind,
            device_name=device_name[:80] or kind,
            user_agent=user_agent[:300],
            client_address=client_address[:64],
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )

        async def write(into: AsyncSession) -> None:
            into.add(row)
            self._record(into, events.LoggedIn(user_id=user_id, session_id=row.id, kind=kind))
            record_audit(
                into,
                account_id=user_id,
                action=audit_action,
                occurred_at=now,
                client_address=client_address[:64],
                detail={"device": row.device_name, "kind": kind, "session_id": str(row.id)},
            )

        if session is None:
            async with self.db.transaction() as own:
                await write(own)
        else:
            await write(session)
        return IssuedSession(token=token, session_id=row.id, user_id=user_id, expires_at=expires_at)

    async def authenticate(self, token: str) -> Principal | None:
        if len(token) > 200:
            return None
        now = self.clock.now()
        # One prebuilt read of plain columns, every request: a revoked or expired session is
        # refused on its very next request, on every node (nothing about sessions is cached).
        found = await self.db.first(_SESSION_OF_TOKEN, {"hash": _sha256(token)})
        if found is None:
            return None
        session_id, user_id, revoked_at, expires_at, last_seen_at, locale = found
        if revoked_at is not None:
            return None
        noted = self._touches.get(session_id) or self._flushing.get(session_id)
        if noted is not None and noted > last_seen_at:
            # Seen by this process, not written yet: the sliding expiry already moved.
            last_seen_at = noted
            expires_at = max(expires_at, noted + self._session_ttl)
        if expires_at <= now:
            return None
        if now - last_seen_at >= SESSION_TOUCH_INTERVAL:
            # Sliding expiry: a device in use stays logged in; an idle one ages out.
            if expires_at - now <= SESSION_TOUCH_AT_ONCE_WITHIN:
                async with self.db.engine.begin() as connection:
                    await connection.execute(_TOUCH_SESSION, self._touch_row(session_id, now))
            else:
                self._touches[session_id] = now
        return Principal(user_id=user_id, session_id=session_id, locale=locale)

    @property
    def _session_ttl(self) -> timedelta:
        return timedelta(days=self.settings.session_ttl_days)

    def _touch_row(self, session_id: uuid.UUID, seen: datetime) -> dict[str, Any]:
        return {"session": session_id, "seen": seen, "until": seen + self._session_ttl}

    async def flush_touches(self) -> None:
        """Writes the noted "last seen" times in one statement (at most one row per session)."""
        if not self._touches:
            return
        batch, self._touches = self._touches, {}
        self._flushing.update(batch)
        rows = [self._touch_row(session_id, seen) for session_id, seen in batch.items()]
        try:
            async with self.db.engine.begin() as connection:
                await connection.execute(_TOUCH_SESSION, rows)
        except BaseException:
            # Kept for the next round (a newer note of the same session wins).
            for session_id, seen in batch.items():
                if self._touches.get(session_id, seen) <= seen:
                    self._touches[session_id] = seen
            raise
        finally:
            for session_id, seen in batch.items():
                if self._flushing.get(session_id) == seen:
                    del self._flushing[session_id]

    def session_expiry_column(
        self, user_id: ColumnElement[uuid.UUID], session_id: ColumnElement[uuid.UUID]
    ) -> ScalarSelect[datetime]:
        """The expiry of the device session in the column `session_id`, if it is that of
        `user_id` and not revoked (else NULL), as a column of a statement the caller makes
        anyway (a payment code's claim returns it: one round trip less). Judge it with
        `session_active_until`: together they are `session_active`."""
        return (
            select(DeviceSession.expires_at)
            .where(
                DeviceSession.id == session_id,
                DeviceSession.user_id == user_id,
                DeviceSession.revoked_at.is_(None),
            )
            .scalar_subquery()
        )

    def session_active_until(self, session_id: uuid.UUID, expires_at: datetime | None) -> bool:
        """`session_active` for a session whose stored expiry was read as `expires_at`
        (`session_expiry_column`; None: no such active session)."""
        if expires_at is None:
            return False
        noted = self._touches.get(session_id) or self._flushing.get(session_id)
        if noted is not None:
            expires_at = max(expires_at, noted + self._session_ttl)
        return bool(expires_at > self.clock.now())

    async def session_active(self, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """Whether this device session of this person is logged in (one indexed read)."""
        # Often called inside the caller's transaction (a payment): the noted "last seen" is
        # read from memory here, never written, which would wait for that transaction's lock.
        found = await self.db.first(_ACTIVE_SESSION, {"session": session_id, "user": user_id})
        return self.session_active_until(session_id, found[0] if found is not None else None)

    async def list_devices(self, user_id: uuid.UUID) -> list[Device]:
        await self.flush_touches()  # the list shows when each device was really last seen
        now = self.clock.now()
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(DeviceSession)
                .where(
                    DeviceSession.user_id == user_id,
                    DeviceSession.revoked_at.is_(None),
                    DeviceSession.expires_at > now,
                )
                .order_by(DeviceSession.last_seen_at.desc())
            )
            return [
                Device(r.id, r.kind, r.device_name, r.user_agent, r.created_at, r.last_seen_at)
                for r in rows
            ]

    async def revoke_device(
        self, user_id: uuid.UUID, session_id: uuid.UUID, *, logging_out: bool = False
    ) -> None:
        async with self.db.transaction() as session:
            revoked = await session.execute(
                update(DeviceSession)
                .where(
                    DeviceSession.id == session_id,
                    DeviceSession.user_id == user_id,
                    DeviceSession.revoked_at.is_(None),
                )
                .values(revoked_at=self.clock.now())
            )
            if revoked.rowcount != 1:  # type: ignore[attr-defined]
                raise ProblemError("device-not-found", "It may have been logged out already.")
            self._record(session, events.SessionRevoked(user_id=user_id, session_id=session_id))
            record_audit(
                session,
                account_id=user_id,
                action=audit.LOGOUT if logging_out else audit.DEVICE_REVOKED,
                occurred_at=self.clock.now(),
                detail={"session_id": str(session_id)},
            )

    # -- QR web login ----------------------------------------------------------------------

    async def create_qr_ticket(self, user_agent: str, client_address: str) -> QrTicket:
        """A one-time ticket: its scan code goes in the QR, its poll token stays in the browser.

        Two secrets, so that someone who photographs the screen cannot collect the session.
        """
        await self.limiter.hit(QR_TICKETS_PER_ADDRESS, client_address)
        scan_code = secrets.token_urlsafe(24)
        poll_token = secrets.token_urlsafe(32)
        now = self.clock.now()
        ticket = QrLoginTicket(
            id=new_id(),
            scan_code_hash=_sha256(scan_code),
            poll_token_hash=_sha256(poll_token),
            status="pending",
            browser_user_agent=user_agent[:300],
            browser_address=client_address[:64],
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.qr_ticket_ttl_seconds),
        )
        async with self.db.transaction() as session:
            session.add(ticket)
        return QrTicket(ticket.id, scan_code, poll_token, ticket.expires_at)

    async def _ticket_by_scan_code(self, session: AsyncSession, scan_code: str) -> QrLoginTicket:
        ticket = await session.scalar(
            select(QrLoginTicket).where(QrLoginTicket.scan_code_hash == _sha256(scan_code))
        )
        if ticket is None:
            raise ProblemError("qr-ticket-not-found", "Refresh the code on the computer.")
        if ticket.status in ("confirmed", "consumed"):
            raise ProblemError("qr-ticket-used", "Refresh the code on the computer.")
        if ticket.expires_at <= self.clock.now():
            raise ProblemError("qr-ticket-expired", "Refresh the code on the computer.")
        return ticket

    async def scan_qr_ticket(self, principal: Principal, scan_code: str) -> QrTicketView:
        async with self.db.transaction() as session:
            ticket = await self._ticket_by_scan_code(session, scan_code)
            if ticket.user_id not in (None, principal.user_id):
                raise ProblemError("qr-ticket-used", "Someone else scanned this code.")
            ticket.status, ticket.user_id = "scanned", principal.user_id
            view = QrTicketView(ticket.id, "scanned", ticket.browser_user_agent, ticket.expires_at)
        await self.broker.publish(QR_STATUS_CHANNEL + str(view.id), {"status": "scanned"})
        return view

    async def confirm_qr_ticket(self, principal: Principal, scan_code: str) -> None:
        async with self.db.transaction() as session:
            ticket = await self._ticket_by_scan_code(session, scan_code)
            confirmed = await session.execute(
                update(QrLoginTicket)
                .where(
                    QrLoginTicket.id == ticket.id,
                    QrLoginTicket.status.in_(("pending", "scanned")),
                    (QrLoginTicket.user_id.is_(None))
                    | (QrLoginTicket.user_id == principal.user_id),
                )
                .values(status="confirmed", user_id=principal.user_id)
            )
            if confirmed.rowcount != 1:  # type: ignore[attr-defined]
                raise ProblemError("qr-ticket-used", "Refresh the code on the computer.")
            ticket_id = ticket.id
        await self.broker.publish(QR_STATUS_CHANNEL + str(ticket_id), {"status": "confirmed"})

    async def claim_qr_ticket(
        self,
        ticket_id: uuid.UUID,
        poll_token: str,
        *,
        wait_seconds: float,
        user_agent: str,
        client_address: str,
    ) -> QrClaim:
        """Wait (long poll) until the ticket is confirmed, then turn it into a web session once."""
        deadline = time.monotonic() + max(0.0, min(wait_seconds, 30.0))
        async with self.broker.subscribe(QR_STATUS_CHANNEL + str(ticket_id)) as updates:
            while True:
                claim = await self._try_claim(ticket_id, poll_token, user_agent, client_address)
                remaining = deadline - time.monotonic()
                if claim.status in ("consumed", "expired") or remaining <= 0:
                    return claim
                await updates.get(timeout=min(remaining, 2.0))

    async def _try_claim(
        self, ticket_id: uuid.UUID, poll_token: str, user_agent: str, client_address: str
    ) -> QrClaim:
        now = self.clock.now()
        async with self.db.transaction() as session:
            ticket = await session.get(QrLoginTicket, ticket_id)
            if ticket is None or not hmac.compare_digest(
                ticket.poll_token_hash, _sha256(poll_token)
            ):
                raise ProblemError("qr-ticket-not-found", "Refresh the page for a new code.")
            if ticket.status == "consumed":
                raise ProblemError("qr-ticket-used", "Refresh the page for a new code.")
            if ticket.expires_at <= now:
                return QrClaim("expired")
            if ticket.status != "confirmed" or ticket.user_id is None:
                return QrClaim(ticket.status)
            claimed = await session.execute(
                update(QrLoginTicket)
                .where(QrLoginTicket.id == ticket_id, QrLoginTicket.status == "confirmed")
                .values(status="consumed")
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise ProblemError("qr-ticket-used", "Refresh the page for a new code.")
            issued = await self._issue_session(
                ticket.user_id,
                kind="web",
                device_name="Web browser",
                user_agent=user_agent,
                client_address=client_address,
                session=session,
                audit_action=audit.QR_LOGIN,
            )
            ticket.session_id = issued.session_id
            return QrClaim("consumed", issued)

    # -- profile ---------------------------------------------------------------------------

    async def _user(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        user = await session.get(User, user_id)
        if user is None:
            raise ProblemError("person-not-found")
        return user

    def _own(self, user: User) -> OwnProfile:
        changeable = (
            user.omo_id_changed_at + OMO_ID_CHANGE_INTERVAL if user.omo_id_changed_at else None
        )
        return OwnProfile(
            user.id,
            user.phone_e164,
            user.omo_id,
            changeable,
            user.display_name,
            user.region,
            user.locale,
            user.avatar_id,
            user.created_at,
            user.time_zone,
        )

    async def locale_of(self, user_id: uuid.UUID) -> str | None:
        """The person's chosen language; None if they chose none (or there is no such person).

        One plain read: other contexts ask it per message (an account's automatic reply).
        """
        async with self.db.reader.connect() as connection:
            locale: str | None = await connection.scalar(
                select(User.locale).where(User.id == user_id)
            )
        return locale

    async def own_profile(self, user_id: uuid.UUID) -> OwnProfile:
        async with self.db.sessions() as session:
            return self._own(await self._user(session, user_id))

    async def update_profile(
        self,
        user_id: uuid.UUID,
        *,
        display_name: str | None = None,
        region: str | None = None,
        locale: str | None = None,
        time_zone: str | None = None,
    ) -> OwnProfile:
        if region is not None and not _is_region(region):
            raise ProblemError("invalid-region", "Use a two-letter ISO 3166 region code.")
        if locale is not None and locale not in SUPPORTED:
            raise ProblemError(
                "invalid-locale",
                "Choose one of: %(locales)s",
                params={"locales": ", ".join(SUPPORTED)},
            )
        if time_zone is not None and not is_time_zone(time_zone):
            raise ProblemError(
                "invalid-time-zone", "Use an IANA time zone name, such as Europe/Rome."
            )
        async with self.db.transaction() as session:
            user = await self._user(session, user_id)
            changed: list[str] = []
            if display_name is not None:
                user.display_name = display_name.strip()
                changed.append("display_name")
            if region is not None:
                user.region = region.upper()
                changed.append("region")
            if locale is not None:
                user.locale = locale
                changed.append("locale")
            if time_zone is not None:
                user.time_zone = time_zone
                changed.append("time_zone")
            if changed:
                self._record(session, events.ProfileChanged(user_id=user_id, fields=tuple(changed)))
            return self._own(user)

    async def change_omo_id(self, user_id: uuid.UUID, raw: str) -> OwnProfile:
        omo_id = normalise_omo_id(raw)
        now = self.clock.now()
        try:
            async with self.db.transaction() as session:
                user = await self._user(session, user_id)
                if user.omo_id == omo_id:
                    return self._own(user)
                if user.omo_id_changed_at and now < user.omo_id_changed_at + OMO_ID_CHANGE_INTERVAL:
                    next_change = user.omo_id_changed_at + OMO_ID_CHANGE_INTERVAL
                    raise ProblemError(
                        "omo-id-change-too-soon",
                        "You can change it again after the date given.",
                        changeable_from=next_change.isoformat(),
                    )
                user.omo_id, user.omo_id_changed_at = omo_id, now
                self._record(session, events.ProfileChanged(user_id=user_id, fields=("omo_id",)))
                record_audit(
                    session,
                    account_id=user_id,
                    action=audit.OMO_ID_CHANGED,
                    occurred_at=now,
                    detail={"omo_id": omo_id},
                )
                await session.flush()
                return self._own(user)
        except IntegrityError as error:
            raise ProblemError("omo-id-taken", "Try another one.") from error

    async def set_avatar(self, user_id: uuid.UUID, data: bytes) -> OwnProfile:
        content_type, cleaned = await to_thread.run_sync(self._clean_avatar, data)
        async with self.db.transaction() as session:
            user = await self._user(session, user_id)
            avatar = Avatar(
                id=new_id(),
                user_id=user_id,
                content_type=content_type,
                data=cleaned,
                created_at=self.clock.now(),
            )
            session.add(avatar)
            user.avatar_id = avatar.id
            self._record(session, events.ProfileChanged(user_id=user_id, fields=("avatar",)))
            await session.flush()
            return self._own(user)

    def _clean_avatar(self, data: bytes) -> tuple[str, bytes]:
        """Accept PNG, JPEG or WebP; re-encode so no metadata (GPS in EXIF) or payload survives."""
        if len(data) > self.settings.avatar_max_bytes:
            raise ProblemError(
                "avatar-too-large",
                "Use an image under %(kib)d KiB.",
                params={"kib": self.settings.avatar_max_bytes // 1024},
            )
        try:
            with Image.open(io.BytesIO(data)) as probe:
                image_format = probe.format or ""
                width, height = probe.size
                probe.verify()
            if image_format not in AVATAR_FORMATS:
                raise ProblemError("invalid-avatar", "Use a PNG, JPEG or WebP image.")
            if width > AVATAR_MAX_SIDE or height > AVATAR_MAX_SIDE:
                raise ProblemError("invalid-avatar", "Use an image at most 4096 pixels wide.")
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                rgb = image.convert("RGBA" if image_format == "PNG" else "RGB")
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            Image.DecompressionBombError,
        ) as error:
            raise ProblemError("invalid-avatar", "Use a PNG, JPEG or WebP image.") from error
        rgb.thumbnail((AVATAR_STORED_SIDE, AVATAR_STORED_SIDE))
        out = io.BytesIO()
        if image_format == "PNG":
            rgb.save(out, "PNG", optimize=True)
            return "image/png", out.getvalue()
        rgb.save(out, "JPEG", quality=88)
        return "image/jpeg", out.getvalue()

    async def avatar(self, avatar_id: uuid.UUID) -> tuple[str, bytes]:
        async with self.db.sessions() as session:
            avatar = await session.get(Avatar, avatar_id)
            if avatar is None:
                raise ProblemError("not-found", "No such image.")
            return avatar.content_type, avatar.data

    async def find_by_omo_id(self, raw: str) -> PublicProfile:
        async with self.db.sessions() as session:
            user = await session.scalar(
                select(User).where(
                    User.omo_id == raw.strip().lower(), User.phone_verified_at.is_not(None)
                )
            )
            if user is None:
                raise ProblemError("person-not-found", "Check the spelling.")
            return _public(user)

    async def public_profiles(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, PublicProfile]:
        async with self.db.sessions() as session:
            rows = await session.scalars(select(User).where(User.id.in_(user_ids)))
            return {user.id: _public(user) for user in rows}

    async def audit_trail(
        self, user_id: uuid.UUID, *, limit: int, before: uuid.UUID | None
    ) -> list[AuditRecord]:
        async with self.db.sessions() as session:
            return await audit.audit_trail(session, user_id, limit=limit, before=before)

    # -- the person's own data: export and erasure ----------------------------------------

    async def export_data(self, user_id: uuid.UUID, client_address: str) -> dict[str, Any]:
        """Everything the identity context holds about the person, for the person.

        The export is itself recorded in the audit log (someone holding a stolen session
        could take it; the owner should see that it happened, when and from where).
        """
        await self.flush_touches()
        now = self.clock.now()
        async with self.db.transaction() as session:
            user = await self._user(session, user_id)
            devices = await session.scalars(
                select(DeviceSession)
                .where(DeviceSession.user_id == user_id)
                .order_by(DeviceSession.created_at)
            )
            apps = await session.scalars(
                select(Pseudonym).where(Pseudonym.user_id == user_id).order_by(Pseudonym.scope)
            )
            trail = await audit.audit_trail(session, user_id, limit=10_000, before=None)
            record_audit(
                session,
                account_id=user_id,
                action=audit.EXPORT,
                occurred_at=now,
                client_address=client_address[:64],
            )
            return {
                "exported_at": now.isoformat(),
                "profile": {
                    "phone": user.phone_e164,
                    "omo_id": user.omo_id,
                    "display_name": user.display_name,
                    "region": user.region,
                    "locale": user.locale,
                    "time_zone": user.time_zone,
                    "has_photo": user.avatar_id is not None,
                    "created_at": user.created_at.isoformat(),
                },
                "devices": [
                    {
                        "kind": d.kind,
                        "name": d.device_name,
                        "user_agent": d.user_agent,
                        "client_address": d.client_address,
                        "created_at": d.created_at.isoformat(),
                        "last_seen_at": d.last_seen_at.isoformat(),
                        "revoked_at": d.revoked_at.isoformat() if d.revoked_at else None,
                    }
                    for d in devices
                ],
                "known_to_apps": [
                    {"kind": p.kind, "app_or_organisation": p.scope, "id": p.pseudonym}
                    for p in apps
                ],
                "audit_log": [
                    {
                        "action": r.action,
                        "actor": r.actor,
                        "client_address": r.client_address,
                        "detail": r.detail,
                        "occurred_at": r.occurred_at.isoformat(),
                    }
                    for r in trail
                ],
            }

    async def erase_account(self, user_id: uuid.UUID, password: str, client_address: str) -> None:
        """Erase the person: no phone, name, photo or session remains, and no one can log in.

        The row stays as a tombstone: the append-only audit log and the brands' pseudonyms
        point at its id, and other contexts drop their own data on `PersonErased`.
        """
        await self.limiter.hit(ERASE_PER_PERSON, str(user_id))
        async with self.db.sessions() as session:
            user = await self._user(session, user_id)
            stored_hash = user.password_hash
        if not await self._password_matches(stored_hash, password):
            raise ProblemError("wrong-password", "Nothing was erased.")
        for guard in self.erasure_guards:
            await guard(user_id)
        now = self.clock.now()
        async with self.db.transaction() as session:
            user = await self._user(session, user_id)
            phone = user.phone_e164
            # Not a valid E.164 number (no "+"), so no sign-up or log-in can ever match it.
            user.phone_e164 = "erased-" + secrets.token_hex(6)
            user.password_hash = ""
            user.phone_verified_at = None
            user.display_name = ERASED_NAME
            user.region = user.locale = user.time_zone = None
            user.omo_id = "erased-" + secrets.token_hex(6)
            user.avatar_id = None
            user.erased_at = now
            await session.execute(delete(Avatar).where(Avatar.user_id == user_id))
            await session.execute(
                delete(VerificationCode).where(VerificationCode.phone_e164 == phone)
            )
            await session.execute(
                update(DeviceSession)
                .where(DeviceSession.user_id == user_id, DeviceSession.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            self._record(session, events.PersonErased(user_id=user_id))
            record_audit(
                session,
                account_id=user_id,
                action=audit.ERASURE,
                occurred_at=now,
                client_address=client_address[:64],
            )

    # -- pseudonymous ids ------------------------------------------------------------------

    def _derive(self, kind: str, scope: str, user_id: uuid.UUID) -> str:
        digest = hmac.new(self._secret, f"{kind}:{scope}:{user_id}".encode(), hashlib.sha256)
        return "o" + base64.urlsafe_b64encode(digest.digest()[:21]).decode()

    async def _pseudonym(self, kind: str, scope: str, user_id: uuid.UUID) -> str:
        value = self._derive(kind, scope, user_id)
        async with self.db.transaction() as session:
            known = await session.get(Pseudonym, (kind, scope, value))
            if known is None:
                session.add(Pseudonym(kind=kind, scope=scope, pseudonym=value, user_id=user_id))
        return value

    async def openid(self, app_id: str, user_id: uuid.UUID) -> str:
        """The person as one app sees them: stable for that app, unlinkable across apps."""
        return await self._pseudonym("openid", app_id, user_id)

    async def unionid(self, organisation_id: str, user_id: uuid.UUID) -> str:
        """The person across every app of one organisation."""
        return await self._pseudonym("unionid", organisation_id, user_id)

    async def resolve_openid(self, app_id: str, openid: str) -> uuid.UUID | None:
        async with self.db.sessions() as session:
            known = await session.get(Pseudonym, ("openid", app_id, openid))
            return known.user_id if known else None

    # -- operator and demo -----------------------------------------------------------------

    async def ensure_person(
        self, phone_raw: str, password: str, display_name: str, omo_id: str | None = None
    ) -> uuid.UUID:
        """Create a verified person if the phone is unknown (demo world, operator tooling)."""
        phone = parse_phone(phone_raw)
        async with self.db.transaction() as session:
            existing = await session.scalar(select(User.id).where(User.phone_e164 == phone))
            if existing is not None:
                return existing
            now = self.clock.now()
            region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
            user = User(
                id=new_id(),
                phone_e164=phone,
                password_hash=await self._hash_password(password),
                phone_verified_at=now,
                display_name=display_name,
                region=region,
                omo_id=normalise_omo_id(omo_id) if omo_id else await self._fresh_omo_id(session),
                created_at=now,
            )
            session.add(user)
            self._record(session, events.PersonSignedUp(user_id=user.id, region=region))
            return user.id

    async def count_people(self) -> int:
        async with self.db.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def _public(user: User) -> PublicProfile:
    return PublicProfile(user.id, user.omo_id, user.display_name, user.region, user.avatar_id)


async def wait_briefly() -> None:
    """Yield to the loop; used by callers that poll cooperatively."""
    await asyncio.sleep(0)
