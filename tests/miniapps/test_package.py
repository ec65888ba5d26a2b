"""Package format: the zip's limits and the W3C MiniApp Manifest, checked without a server."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from typing import Any

import pytest
from tests.miniapps.conftest import manifest, package, package_files

from omo.miniapps.package import (
    MAX_PACKAGE_BYTES,
    PackageInvalid,
    build_zip,
    load_package,
    validate_manifest,
)

APPID = "mp0123456789abcdef"


def codes(error: pytest.ExceptionInfo[PackageInvalid]) -> set[tuple[str, str]]:
    return {(v.code, v.where) for v in error.value.violations}


def test_a_valid_package_is_read_with_the_specification_window_defaults() -> None:
    loaded = load_package(package(APPID))
    assert loaded.manifest.app_id == APPID
    assert loaded.manifest.entry_page == "pages/menu"
    assert loaded.manifest.version_code == 1
    assert loaded.manifest.permissions[0].name == "payment"
    assert loaded.manifest.window["navigation_bar_title_text"] == "Menu"
    assert loaded.manifest.window["background_color"] == "#ffffff"
    assert loaded.manifest.window["orientation"] == "portrait"


@pytest.mark.parametrize(
    "member", ["app_id", "icons", "name", "pages", "platform_version", "version"]
)
def test_each_member_the_specification_requires_is_required(member: str) -> None:
    body = manifest(APPID)
    del body[member]
    with pytest.raises(PackageInvalid) as error:
        validate_manifest(body)
    assert ("manifest.missing", member) in codes(error)


def test_reason_is_optional_in_the_specification_but_omo_requires_one() -> None:
    body = manifest(APPID, req_permissions=[{"name": "location"}])
    with pytest.raises(PackageInvalid) as error:
        validate_manifest(body)
    assert ("manifest.permission.reason", "req_permissions[0].reason") in codes(error)


def test_an_unknown_permission_is_refused() -> None:
    body = manifest(APPID, req_permissions=[{"name": "contacts", "reason": "x"}])
    with pytest.raises(PackageInvalid) as error:
        validate_manifest(body)
    assert ("manifest.permission.unknown", "req_permissions[0].name") in codes(error)


@pytest.mark.parametrize("code", ["1", 1.5, -1, True])
def test_version_code_must_be_a_non_negative_integer(code: Any) -> None:
    body = manifest(APPID, version={"code": code, "name": "1.0"})
    with pytest.raises(PackageInvalid) as error:
        validate_manifest(body)
    assert ("manifest.not_a_count", "version.code") in codes(error)


def test_platform_version_min_code_beyond_this_platform_is_refused() -> None:
    body = manifest(APPID, platform_version={"min_code": 99})
    with pytest.raises(PackageInvalid) as error:
        validate_manifest(body)
    assert ("manifest.platform_too_new", "platform_version.min_code") in codes(error)


def test_window_members_are_checked_against_their_allowed_values() -> None:
    body = manifest(APPID, window={"navigation_bar_text_style": "pink", "background_color": "red"})
    with pytest.raises(PackageInvalid) as error:
        validate_manifest(body)
    assert codes(error) == {
        ("manifest.window.choice", "window.navigation_bar_text_style"),
        ("manifest.window.color", "window.background_color"),
    }


def test_unknown_members_are_vendor_extensions_and_ignored() -> None:
    assert validate_manifest(manifest(APPID, wechat_extra={"x": 1})).name == "Table ordering"


def test_a_page_without_its_html_file_is_refused() -> None:
    files = package_files(APPID)
    del files["pages/order.html"]
    with pytest.raises(PackageInvalid) as error:
        load_package(build_zip(files))
    assert ("manifest.file_missing", "pages[1]") in codes(error)


def test_a_page_is_a_route_without_extension() -> None:
    body = manifest(APPID, pages=["pages/menu.html"])
    with pytest.raises(PackageInvalid) as error:
        validate_manifest(body)
    assert ("manifest.page.invalid", "pages[0]") in codes(error)


def test_a_package_without_manifest_is_refused() -> None:
    files = package_files(APPID)
    del files["manifest.json"]
    with pytest.raises(PackageInvalid) as error:
        load_package(build_zip(files))
    assert ("package.no_manifest", "manifest.json") in codes(error)


def test_a_zip_over_one_mebibyte_is_refused_before_opening() -> None:
    files = package_files(APPID)
    files["big.png"] = os.urandom(MAX_PACKAGE_BYTES)  # random: does not compress
    with pytest.raises(PackageInvalid) as error:
        load_package(build_zip(files))
    assert error.value.too_large
    assert ("package.too_large", "zip") in codes(error)


def test_a_zip_bomb_is_stopped_while_decompressing() -> None:
    files = package_files(APPID)
    files["bomb.txt"] = b"\0" * (50 * MAX_PACKAGE_BYTES)  # 50 MiB of zeros, ~50 KiB packed
    data = build_zip(files)
    assert len(data) < MAX_PACKAGE_BYTES
    with pytest.raises(PackageInvalid) as error:
        load_package(data)
    assert error.value.too_large
    assert ("package.unpacked_too_large", "bomb.txt") in codes(error)


def test_a_lying_header_does_not_fool_the_unpacked_count() -> None:
    """Sizes are counted while decompressing, not read from the headers."""
    files = package_files(APPID)
    files["a.txt"] = b"a" * (MAX_PACKAGE_BYTES // 2 + 10)
    files["b.txt"] = b"b" * (MAX_PACKAGE_BYTES // 2 + 10)
    with pytest.raises(PackageInvalid) as error:
        load_package(build_zip(files))
    assert error.value.too_large


def _raw_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../evil.html", "package.path.traversal"),
        ("pages/../../evil.html", "package.path.traversal"),
        ("/etc/evil.html", "package.path.absolute"),
        ("C:/evil.html", "package.path.absolute"),
        ("pages\\evil.html", "package.path.invalid"),
    ],
)
def test_paths_leaving_the_package_are_refused(name: str, code: str) -> None:
    files = list(package_files(APPID).items())
    with pytest.raises(PackageInvalid) as error:
        load_package(_raw_zip([*files, (name, b"x")]))
    assert code in {c for c, _ in codes(error)}


def test_a_symlink_is_refused() -> None:
    link = zipfile.ZipInfo("pages/link.html")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    files = list(package_files(APPID).items())
    with pytest.raises(PackageInvalid) as error:
        load_package(_raw_zip([*files, (link, b"/etc/passwd")]))
    assert ("package.symlink", "pages/link.html") in codes(error)


def test_a_file_kind_outside_the_allowed_list_is_refused() -> None:
    files = package_files(APPID)
    files["run.exe"] = b"MZ"
    with pytest.raises(PackageInvalid) as error:
        load_package(build_zip(files))
    assert ("package.file_type", "run.exe") in codes(error)


def test_something_else_than_a_zip_is_refused() -> None:
    with pytest.raises(PackageInvalid) as error:
        load_package(b"not a zip at all")
    assert ("package.not_a_zip", "zip") in codes(error)


def test_manifest_must_be_json() -> None:
    files = package_files(APPID)
    files["manifest.json"] = b"{not json"
    with pytest.raises(PackageInvalid) as error:
        load_package(build_zip(files))
    assert ("manifest.not_json", "manifest.json") in codes(error)
