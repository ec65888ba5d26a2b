"""The W3C MiniApp test suite's manifest cases that apply to OMO (vendored manifests, see
tests/miniapps/w3c/README.md): each package is accepted, and the processed `window` member
holds what the case's normative statement requires (given values, else the spec's defaults).
The suite checks the display in a MiniApp user agent; OMO's host applies these members, so we
check the processing step the cases reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.miniapps.conftest import PNG_1PX

from omo.miniapps.package import build_zip, load_package

CASES = Path(__file__).parent / "w3c"

EXPECTED = {
    # https://www.w3.org/TR/miniapp-manifest/#dfn-process-the-window-s-background_color-member
    "mnf-window-background-color": ("background_color", "#00FF00"),
    "mnf-window-background-color-default": ("background_color", "#ffffff"),
    # https://www.w3.org/TR/miniapp-manifest/#dfn-process-the-window-s-fullscreen-member
    "mnf-window-fullscreen-true": ("fullscreen", True),
    "mnf-window-fullscreen-default": ("fullscreen", False),
    # https://www.w3.org/TR/miniapp-manifest/#dfn-process-the-window-s-orientation-member
    "mnf-window-orientation-default": ("orientation", "portrait"),
    "mnf-window-orientation-landscape": ("orientation", "landscape"),
    "mnf-window-orientation-portrait": ("orientation", "portrait"),
}


def test_every_vendored_case_is_checked() -> None:
    assert {path.stem for path in CASES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_w3c_manifest_case(case: str) -> None:
    manifest = json.loads((CASES / f"{case}.json").read_text())
    package = load_package(
        build_zip(
            {
                "manifest.json": json.dumps(manifest).encode(),
                "common/icon48x48.png": PNG_1PX,
                "pages/home/home.html": b"<!doctype html><title>Home</title><p>Home</p>",
            }
        )
    )
    member, value = EXPECTED[case]
    assert package.manifest.window[member] == value
    assert package.manifest.app_id == "org.example.miniapp"
    assert package.manifest.version_code == 1
