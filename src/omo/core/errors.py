"""Problem details (RFC 9457): every error is `application/problem+json` with a stable `type`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from omo.core.i18n import gettext_for

logger = logging.getLogger("omo.errors")

PROBLEM_BASE = "/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# slug -> (status, English title). Titles go through the catalogue when rendered.
REGISTRY: dict[str, tuple[int, str]] = {}


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is shaped."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["/problems/invalid-phone"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def _problem_response_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": Problem.model_json_schema()}},
    }


# Errors any route may answer; routers include these so the OpenAPI document is truthful.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_response_doc("The request cannot be carried out as sent"),
    401: _problem_response_doc("Authentication required or session ended"),
    403: _problem_response_doc("Not allowed for this caller"),
    404: _problem_response_doc("No such resource for this caller"),
    409: _problem_response_doc("Conflicts with the current state"),
    410: _problem_response_doc("Expired or already used"),
    413: _problem_response_doc("Request body too large"),
    422: _problem_response_doc("Invalid fields"),
    429: _problem_response_doc("Too many requests; see Retry-After"),
    503: _problem_response_doc("A dependency is unavailable; try again later"),
}


def problem_type(slug: str) -> str:
    return PROBLEM_BASE + slug


def register(slug: str, status: int, title: str) -> str:
    REGISTRY[slug] = (status, title)
    return slug


register("validation-error", 422, "Your request has invalid fields")
register("not-found", 404, "Not found")
register("method-not-allowed", 405, "Method not allowed")
register("unauthenticated", 401, "Authentication required")
register("forbidden", 403, "Not allowed")
register("rate-limited", 429, "Too many requests")
register("payload-too-large", 413, "Request body too large")
register("csrf-failed", 403, "Cross-site request refused")
register("internal-error", 500, "Something went wrong on our side")
register("http-error", 400, "Bad request")


class ProblemError(Exception):
    """Raised by services for any refusal a caller should see; rendered as problem+json."""

    def __init__(
        self,
        slug: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        **extensions: Any,
    ) -> None:
        known_status, title = REGISTRY.get(slug, (status or 400, slug.replace("-", " ")))
        self.slug = slug
        self.status = status or known_status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.params = params or {}
        self.extensions = extensions
        super().__init__(detail or title)


def problem_response(
    request: Request,
    slug: str,
    status: int,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Titles and details are English msgids, translated here into the caller's language."""
    body = problem_content(
        gettext_for(request), request.url.path, slug, status, title, detail, params, **extensions
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_content(
    gettext: Callable[[str], str],
    instance: str,
    slug: str,
    status: int,
    title: str,
    detail: str | None = None,
    params: dict[str, Any] | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """A problem's JSON body, its title and detail translated by `gettext`."""
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": gettext(title),
        "status": status,
        "instance": instance,
    }
    if detail:
        body["detail"] = gettext(detail) % params if params else gettext(detail)
    body.update(extensions)
    return body


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": err.get("msg", "")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            request,
            exc.slug,
            exc.status,
            exc.title,
            exc.detail,
            exc.headers,
            exc.params,
            **exc.extensions,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(
            request,
            "validation-error",
            422,
            REGISTRY["validation-error"][1],
            "Check the fields listed in errors.",
            errors=_validation_errors(exc),
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed", 401: "unauthenticated"}.get(
            exc.status_code, "http-error"
        )
        title = REGISTRY[slug][1]
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            request, slug, exc.status_code, title, detail, dict(exc.headers or {})
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, "internal-error", 500, REGISTRY["internal-error"][1])

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
