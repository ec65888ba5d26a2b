"""Mini program packages: a zip of at most 1 MiB holding a W3C MiniApp Manifest and its pages.

Pure functions, no I/O beyond the bytes given: `read_package` opens the zip defensively
(size counted while decompressing, so a zip bomb stops at the limit; traversal, absolute
paths, symlinks, encryption and unknown file kinds refused) and `validate_manifest` checks
`manifest.json` against the MiniApp Manifest specification's text
(https://www.w3.org/TR/miniapp-manifest/), plus OMO's own rules, listed in docs/MINIAPPS.md.
Each violation is a stable code with the member it concerns, so tools can show all of them.
"""

from __future__ import annotations

import io
import json
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any, TypeGuard

MAX_PACKAGE_BYTES = 1024 * 1024  # the zip as uploaded
MAX_UNPACKED_BYTES = 1024 * 1024  # the sum of its files after decompression
MAX_FILES = 512
MAX_PATH = 200
PLATFORM_VERSION = 1  # the highest `platform_version.min_code` this platform runs

# What a package may hold, served with these types (anything else is refused at upload).
CONTENT_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "ico": "image/x-icon",
    "woff2": "font/woff2",
}

# The permissions a manifest may ask for (`req_permissions[].name`) and the bridge calls
# they open; see docs/MINIAPPS.md. Calls not listed here need no permission.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "profile": ("getUserProfile",),
    "location": ("getLocation",),
    "precise_location": ("getLocation",),
    "camera": ("scanCode",),
    "payment": ("requestPayment",),
    "coupons": ("chooseCoupon",),
    "subscribe_message": ("requestSubscribeMessage",),
    "share": ("share",),
}

_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Violation:
    code: str  # e.g. "manifest.pages.missing"; stable, documented in docs/MINIAPPS.md
    where: str  # the member or file concerned


class PackageInvalid(Exception):  # noqa: N818 - reads as the domain term
    def __init__(self, violations: list[Violation], *, too_large: bool = False) -> None:
        self.violations = violations
        self.too_large = too_large
        super().__init__(", ".join(f"{v.code} ({v.where})" for v in violations))


@dataclass(frozen=True)
class Permission:
    name: str
    reason: str


@dataclass(frozen=True)
class Manifest:
    app_id: str
    name: str
    short_name: str
    description: str
    version_name: str
    version_code: int
    pages: tuple[str, ...]
    icons: tuple[str, ...]
    permissions: tuple[Permission, ...]
    window: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    @property
    def entry_page(self) -> str:
        return self.pages[0]

    def as_json(self) -> dict[str, Any]:
        return self.raw


@dataclass(frozen=True)
class Package:
    files: dict[str, bytes]
    manifest: Manifest
    packed_size: int

    @property
    def unpacked_size(self) -> int:
        return sum(len(data) for data in self.files.values())


def content_type_of(path: str) -> str | None:
    extension = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return CONTENT_TYPES.get(extension)


def _check_path(name: str) -> Violation | None:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return Violation("package.path.absolute", name[:MAX_PATH])
    if "\\" in name or "\x00" in name or len(name) > MAX_PATH:
        return Violation("package.path.invalid", name[:MAX_PATH])
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return Violation("package.path.traversal", name[:MAX_PATH])
    if not all(_SAFE_SEGMENT.match(part) for part in parts):
        return Violation("package.path.invalid", name[:MAX_PATH])
    return None


def read_package(data: bytes) -> dict[str, bytes]:
    """The package's files by path, or PackageInvalid listing why not."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageInvalid([Violation("package.too_large", "zip")], too_large=True)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise PackageInvalid([Violation("package.not_a_zip", "zip")]) from None
    violations: list[Violation] = []
    entries = archive.infolist()
    if len(entries) > MAX_FILES:
        raise PackageInvalid([Violation("package.too_many_files", "zip")])
    files: dict[str, bytes] = {}
    budget = MAX_UNPACKED_BYTES
    for info in entries:
        problem = _check_path(info.filename)
        if problem:
            violations.append(problem)
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            violations.append(Violation("package.symlink", info.filename))
            continue
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            violations.append(Violation("package.encrypted", info.filename))
            continue
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            violations.append(Violation("package.compression", info.filename))
            continue
        if content_type_of(info.filename) is None:
            violations.append(Violation("package.file_type", info.filename))
            continue
        if info.filename in files:
            violations.append(Violation("package.duplicate", info.filename))
            continue
        # Count what decompression really yields, not what the header claims: a bomb stops
        # here, one chunk past the limit.
        chunks: list[bytes] = []
        try:
            with archive.open(info) as member:
                while chunk := member.read(min(_CHUNK, budget + 1)):
                    budget -= len(chunk)
                    if budget < 0:
                        raise PackageInvalid(
                            [Violation("package.unpacked_too_large", info.filename)],
                            too_large=True,
                        )
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
            violations.append(Violation("package.corrupt", info.filename))
            continue
        files[info.filename] = b"".join(chunks)
    if violations:
        raise PackageInvalid(violations)
    return files


# -- the manifest ------------------------------------------------------------------------


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(
    json_: dict[str, Any], key: str, where: str, out: list[Violation], *, required: bool = False
) -> str:
    value = json_.get(key)
    if value is None:
        if required:
            out.append(Violation("manifest.missing", where))
        return ""
    if not isinstance(value, str):
        out.append(Violation("manifest.not_a_string", where))
        return ""
    return value


_WINDOW_DEFAULTS: dict[str, Any] = {
    # The defaults of "process the window member" in the specification.
    "auto_design_width": False,
    "background_color": "#ffffff",
    "background_text_style": "dark",
    "design_width": 750,
    "enable_pull_down_refresh": False,
    "fullscreen": False,
    "navigation_bar_background_color": "#000000",
    "navigation_bar_text_style": "white",
    "navigation_bar_title_text": "default",
    "navigation_style": "default",
    "on_reach_bottom_distance": 50,
    "orientation": "portrait",
}
_WINDOW_CHOICES: dict[str, tuple[str, ...]] = {
    "background_text_style": ("light", "dark"),
    "navigation_bar_text_style": ("black", "white"),
    "navigation_style": ("default", "custom"),
    "orientation": ("portrait", "landscape"),
}


def _window(value: Any, out: list[Violation]) -> dict[str, Any]:
    window = dict(_WINDOW_DEFAULTS)
    if value is None:
        return window
    if not isinstance(value, dict):
        out.append(Violation("manifest.not_an_object", "window"))
        return window
    for key, given in value.items():
        where = f"window.{key}"
        if key not in _WINDOW_DEFAULTS:
            continue  # vendor extensions are allowed and ignored
        if key in ("background_color", "navigation_bar_background_color"):
            if not isinstance(given, str) or not _COLOR.match(given):
                out.append(Violation("manifest.window.color", where))
                continue
        elif key in _WINDOW_CHOICES:
            if given not in _WINDOW_CHOICES[key]:
                out.append(Violation("manifest.window.choice", where))
                continue
        elif key in ("auto_design_width", "enable_pull_down_refresh", "fullscreen"):
            if not isinstance(given, bool):
                out.append(Violation("manifest.not_a_boolean", where))
                continue
        elif key in ("design_width", "on_reach_bottom_distance"):
            if not _is_int(given) or given < 0:
                out.append(Violation("manifest.not_a_count", where))
                continue
        elif key == "navigation_bar_title_text" and (not isinstance(given, str) or len(given) > 64):
            out.append(Violation("manifest.not_a_string", where))
            continue
        window[key] = given
    return window


def validate_manifest(json_: Any, files: dict[str, bytes] | None = None) -> Manifest:
    """The manifest, normalised, or PackageInvalid with every violation found.

    Follows the specification's conformance section and member definitions: `app_id`,
    `icons` (each with `src`), `name`, `pages`, `platform_version` (with `min_code`) and
    `version` (with `code` and `name`) are required. `files`, when given, are the package's
    files: each page must have its `.html` and each icon its file.
    """
    out: list[Violation] = []
    if not isinstance(json_, dict):
        raise PackageInvalid([Violation("manifest.not_an_object", "manifest.json")])
    app_id = _string(json_, "app_id", "app_id", out, required=True)
    name = _string(json_, "name", "name", out, required=True)
    if "name" in json_ and isinstance(json_.get("name"), str) and not 0 < len(name.strip()) <= 64:
        out.append(Violation("manifest.name.length", "name"))
    short_name = _string(json_, "short_name", "short_name", out)
    description = _string(json_, "description", "description", out)
    for key in ("lang", "color_scheme"):
        _string(json_, key, key, out)
    if json_.get("dir") is not None and json_.get("dir") not in ("ltr", "rtl", "auto"):
        out.append(Violation("manifest.choice", "dir"))
    if json_.get("color_scheme") not in (None, "auto", "light", "dark"):
        out.append(Violation("manifest.choice", "color_scheme"))
    device_type = json_.get("device_type")
    if device_type is not None and (
        not isinstance(device_type, list) or not all(isinstance(d, str) for d in device_type)
    ):
        out.append(Violation("manifest.not_a_list_of_strings", "device_type"))

    icons: list[str] = []
    raw_icons = json_.get("icons")
    if raw_icons is None:
        out.append(Violation("manifest.missing", "icons"))
    elif not isinstance(raw_icons, list) or not raw_icons:
        out.append(Violation("manifest.not_a_list", "icons"))
    else:
        for index, icon in enumerate(raw_icons):
            where = f"icons[{index}].src"
            src = icon.get("src") if isinstance(icon, dict) else None
            if not isinstance(src, str) or not src:
                out.append(Violation("manifest.missing", where))
            elif _check_path(src) or (files is not None and src not in files):
                out.append(Violation("manifest.file_missing", where))
            else:
                icons.append(src)

    pages: list[str] = []
    raw_pages = json_.get("pages")
    if raw_pages is None:
        out.append(Violation("manifest.missing", "pages"))
    elif not isinstance(raw_pages, list) or not raw_pages:
        out.append(Violation("manifest.not_a_list", "pages"))
    else:
        for index, page in enumerate(raw_pages):
            where = f"pages[{index}]"
            if not isinstance(page, str):
                out.append(Violation("manifest.not_a_string", where))
            elif _check_path(page) or "." in page.rsplit("/", 1)[-1]:
                # A page is a route: a path relative to the package, without its extension.
                out.append(Violation("manifest.page.invalid", where))
            elif page in pages:
                out.append(Violation("manifest.page.duplicate", where))
            elif files is not None and f"{page}.html" not in files:
                out.append(Violation("manifest.file_missing", where))
            else:
                pages.append(page)

    platform = json_.get("platform_version")
    if platform is None:
        out.append(Violation("manifest.missing", "platform_version"))
    elif not isinstance(platform, dict):
        out.append(Violation("manifest.not_an_object", "platform_version"))
    else:
        min_code = platform.get("min_code")
        if not _is_int(min_code) or min_code < 0:
            out.append(Violation("manifest.not_a_count", "platform_version.min_code"))
        elif min_code > PLATFORM_VERSION:
            out.append(Violation("manifest.platform_too_new", "platform_version.min_code"))
        target = platform.get("target_code")
        if target is not None and (not _is_int(target) or target < 0):
            out.append(Violation("manifest.not_a_count", "platform_version.target_code"))
        if platform.get("release_type") is not None and not isinstance(
            platform.get("release_type"), str
        ):
            out.append(Violation("manifest.not_a_string", "platform_version.release_type"))

    version_name, version_code = "", 0
    version = json_.get("version")
    if version is None:
        out.append(Violation("manifest.missing", "version"))
    elif not isinstance(version, dict):
        out.append(Violation("manifest.not_an_object", "version"))
    else:
        code = version.get("code")
        if not _is_int(code) or code < 0 or code > 2**31 - 1:
            out.append(Violation("manifest.not_a_count", "version.code"))
        else:
            version_code = code
        version_name = _string(version, "name", "version.name", out, required=True)
        if version_name and len(version_name) > 64:
            out.append(Violation("manifest.too_long", "version.name"))

    permissions: list[Permission] = []
    raw_permissions = json_.get("req_permissions")
    if raw_permissions is not None:
        if not isinstance(raw_permissions, list):
            out.append(Violation("manifest.not_a_list", "req_permissions"))
        else:
            seen: set[str] = set()
            for index, item in enumerate(raw_permissions):
                where = f"req_permissions[{index}]"
                if not isinstance(item, dict):
                    out.append(Violation("manifest.not_an_object", where))
                    continue
                perm = item.get("name")
                reason = item.get("reason")
                if not isinstance(perm, str):
                    out.append(Violation("manifest.missing", f"{where}.name"))
                elif perm not in PERMISSIONS:
                    out.append(Violation("manifest.permission.unknown", f"{where}.name"))
                elif perm in seen:
                    out.append(Violation("manifest.permission.duplicate", f"{where}.name"))
                elif not isinstance(reason, str) or not reason.strip():
                    # The specification makes `reason` optional; OMO shows it to the person
                    # before they grant the permission, so it requires one.
                    out.append(Violation("manifest.permission.reason", f"{where}.reason"))
                elif len(reason) > 200:
                    out.append(Violation("manifest.too_long", f"{where}.reason"))
                else:
                    seen.add(perm)
                    permissions.append(Permission(perm, reason.strip()))

    window = _window(json_.get("window"), out)
    if out:
        raise PackageInvalid(out)
    return Manifest(
        app_id=app_id,
        name=name.strip(),
        short_name=short_name,
        description=description,
        version_name=version_name,
        version_code=version_code,
        pages=tuple(pages),
        icons=tuple(icons),
        permissions=tuple(permissions),
        window=window,
        raw=json_,
    )


def load_package(data: bytes) -> Package:
    """Read and validate a whole package (zip bytes)."""
    files = read_package(data)
    raw = files.get("manifest.json")
    if raw is None:
        raise PackageInvalid([Violation("package.no_manifest", "manifest.json")])
    try:
        json_ = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PackageInvalid([Violation("manifest.not_json", "manifest.json")]) from None
    return Package(files, validate_manifest(json_, files), len(data))


def build_zip(files: dict[str, bytes]) -> bytes:
    """A package zip from files by path (the CLI's and the tests' way to make one)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            archive.writestr(path, files[path])
    return buffer.getvalue()
