"""Builds the ASGI app: the kernel's services, then each context's router."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy import text

from omo.contexts import CONTEXTS
from omo.core.access import Access, access
from omo.core.broker import broker_from_url
from omo.core.clock import Clock, SystemClock
from omo.core.config import Settings
from omo.core.db import Database
from omo.core.errors import (
    PROBLEM_RESPONSES,
    REGISTRY,
    ProblemError,
    install_error_handlers,
    problem_response,
    problem_type,
)
from omo.core.http import PlatformMiddleware
from omo.core.ratelimit import RateLimited, RateLimiter
from omo.coupons.fastpath import FlashClaims
from omo.identity.service import IdentityService
from omo.identity.sms import HttpSmsSender, LogSmsSender, SmsSender
from omo.miniapps.origin import MiniAppOrigin
from omo.pay.fastpath import PayRoutes
from omo.web import pages

logger = logging.getLogger("omo")


class Health(BaseModel):
    status: str
    database: str


class ProblemDoc(BaseModel):
    type: str
    status: int
    title: str


def _context_apis() -> list[ModuleType]:
    return [importlib.import_module(f"omo.{name}.api") for name in CONTEXTS]


def sms_sender(settings: Settings) -> SmsSender:
    if settings.sms_sender == "http":
        if not settings.sms_gateway_url:
            raise ValueError("OMO_SMS_SENDER=http needs OMO_SMS_GATEWAY_URL")
        return HttpSmsSender(settings.sms_gateway_url, settings.sms_gateway_token)
    return LogSmsSender()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.resolved_database_url)
        broker = broker_from_url(settings.redis_url, settings.redis_prefix)
        limiter = RateLimiter(settings.redis_url, settings.redis_prefix)
        app.state.db, app.state.broker, app.state.limiter = db, broker, limiter
        app.state.identity = IdentityService(
            db, clock, settings, sms_sender(settings), limiter, broker
        )
        app.state.authenticator = app.state.identity
        app.state.identity.start()
        started: list[ModuleType] = []
        try:
            for module in _context_apis():
                if hasattr(module, "start"):
                    await module.start(app)
                started.append(module)
            yield
        finally:
            for module in reversed(started):
                if hasattr(module, "stop"):
                    await module.stop(app)
            await app.state.identity.stop()  # writes the last "last seen" notes
            await limiter.close()
            await broker.close()
            await db.dispose()

    app = FastAPI(
        title="OMO",
        version="0.1.0",
        summary="Online merges offline: chat, brands, pay, coupons and mini programs in one app.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    install_error_handlers(app)

    async def on_rate_limited(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, RateLimited)
        return problem_response(
            request,
            "rate-limited",
            429,
            REGISTRY["rate-limited"][1],
            "Wait a little before trying again.",
            {"Retry-After": str(exc.retry_after)},
            retry_after=exc.retry_after,
        )

    app.add_exception_handler(RateLimited, on_rate_limited)
    # Inside the platform middleware: a flash sale's claims (coupons.fastpath) and a
    # payment's code and scan (pay.fastpath) skip the router.
    app.add_middleware(FlashClaims)
    app.add_middleware(PayRoutes)
    app.add_middleware(
        PlatformMiddleware,
        max_body=settings.max_request_bytes,
        tls=settings.tls,
        default_locale=settings.default_locale,
    )
    # Outermost: the mini program origin's requests never reach the app (see its module).
    app.add_middleware(
        MiniAppOrigin,
        miniapp_origin=settings.resolved_miniapp_origin,
        app_origin=settings.app_origin,
    )

    @app.get(
        "/healthz", response_model=Health, tags=["platform"], openapi_extra=access(Access.ANONYMOUS)
    )
    async def health() -> Health:
        async with app.state.db.sessions() as session:
            await session.execute(text("SELECT 1"))
        return Health(status="ok", database="sqlite" if settings.is_sqlite else "postgresql")

    @app.get(
        "/problems/{slug}",
        response_model=ProblemDoc,
        tags=["platform"],
        responses={404: PROBLEM_RESPONSES[404]},
        openapi_extra=access(Access.ANONYMOUS),
    )
    async def problem_doc(slug: str) -> ProblemDoc:
        if slug not in REGISTRY:
            raise ProblemError("not-found", "No such problem type.")
        status, title = REGISTRY[slug]
        return ProblemDoc(type=problem_type(slug), status=status, title=title)

    for module in _context_apis():
        app.include_router(module.router, responses=PROBLEM_RESPONSES)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(packages=[("omo.web", "static")]), name="static")
    return app
