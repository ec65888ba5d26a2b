"""The mini program origin: a host (by default a second port) that serves package files,
`omo.js` and a blank page for the app's warm frame, and nothing else — the consumer app's
pages, API and cookies never answer there, and package files never answer on the app's origin.

Every file goes out with `Content-Security-Policy: sandbox allow-scripts; ...`, so even a
package page opened directly (not in the host's iframe) runs in an opaque origin, without
the mini program origin's storage nor cookies, and without network access (`connect-src
'none'`): a mini program talks to the platform only through the bridge.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from omo.miniapps.package import content_type_of

CLIENT_SCRIPT = Path(__file__).parent / "static" / "omo.js"
PACKAGE_PREFIX = "/_mpf/"
# A blank page the app's pages load, hidden and sandboxed, while idle: it keeps a renderer
# process for the mini program origin ready, so a launch in the app does not start one.
WARM_PAGE = "/_warm.html"
WARM_BODY = b"<!doctype html><html lang=en><title>OMO</title></html>"


def netloc_of(origin: str) -> str:
    parts = urlsplit(origin)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def package_csp(miniapp_origin: str, app_origin: str) -> str:
    return (
        "sandbox allow-scripts; default-src 'none'; "
        f"script-src {miniapp_origin}; style-src {miniapp_origin} 'unsafe-inline'; "
        f"img-src {miniapp_origin} data: blob:; font-src {miniapp_origin}; "
        f"media-src {miniapp_origin}; connect-src 'none'; form-action 'none'; "
        f"base-uri 'none'; frame-ancestors {app_origin}"
    )


class FileCache:
    """Recently opened packages' files, by version id (immutable once uploaded)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: OrderedDict[str, dict[str, bytes]] = OrderedDict()

    def get(self, key: str) -> dict[str, bytes] | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def drop(self, key: str) -> None:
        self._items.pop(key, None)

    def put(self, key: str, files: dict[str, bytes]) -> None:
        self._items[key] = files
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class MiniAppOrigin:
    """Outermost ASGI layer: splits requests by Host between the app and the package origin."""

    def __init__(self, app: ASGIApp, *, miniapp_origin: str, app_origin: str) -> None:
        self.app = app
        self.netloc = netloc_of(miniapp_origin)
        self.csp = package_csp(miniapp_origin, app_origin).encode()
        self.script = CLIENT_SCRIPT.read_bytes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or not self._is_package_host(scope):
            if scope["type"] == "http" and scope["path"].startswith(PACKAGE_PREFIX):
                await self._answer(send, 404, b"text/plain; charset=utf-8", b"Not found")
                return
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["method"] not in ("GET", "HEAD"):
            await self._answer(send, 405, b"text/plain; charset=utf-8", b"Method not allowed")
            return
        path: str = scope["path"]
        if path == "/omo.js":
            await self._answer(
                send,
                200,
                b"text/javascript; charset=utf-8",
                self.script,
                cache=b"public, max-age=300",
            )
            return
        if path == WARM_PAGE:
            await self._answer(
                send,
                200,
                b"text/html; charset=utf-8",
                WARM_BODY if scope["method"] == "GET" else b"",
                cache=b"public, max-age=86400",
                length=len(WARM_BODY),
            )
            return
        found = await self._package_file(scope, path) if path.startswith(PACKAGE_PREFIX) else None
        if found is None:
            await self._answer(send, 404, b"text/plain; charset=utf-8", b"Not found")
            return
        content_type, body = found
        await self._answer(
            send,
            200,
            content_type.encode(),
            body if scope["method"] == "GET" else b"",
            cache=b"public, max-age=31536000, immutable",
            length=len(body),
        )

    def _is_package_host(self, scope: Scope) -> bool:
        for key, value in scope.get("headers", []):
            if key == b"host":
                return bool(value.decode("latin-1").lower() == self.netloc)
        return False

    async def _package_file(self, scope: Scope, path: str) -> tuple[str, bytes] | None:
        parts = path[len(PACKAGE_PREFIX) :].split("/", 2)
        if len(parts) != 3 or not parts[2]:
            return None
        appid, version_id, name = parts
        content_type = content_type_of(name)
        if content_type is None:
            return None
        service = scope["app"].state.miniapps
        files = await service.package_files(appid, version_id)
        if files is None or name not in files:
            return None
        return content_type, files[name]

    async def _answer(
        self,
        send: Send,
        status: int,
        content_type: bytes,
        body: bytes,
        *,
        cache: bytes = b"no-store",
        length: int | None = None,
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body) if length is None else length).encode()),
                    (b"content-security-policy", self.csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-resource-policy", b"cross-origin"),
                    (b"cache-control", cache),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
