"""`omo miniapp publish DIR` against a running `omo serve`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
from tests.miniapps.conftest import Program, package_files
from tests.support.live import LiveServer
from typer.testing import CliRunner

from omo.cli import app as cli

runner = CliRunner()


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


async def test_publish_validates_then_uploads_a_version(
    client: httpx.AsyncClient, program: Program, live_server: LiveServer, tmp_path: Path
) -> None:
    folder = _folder(tmp_path / "app", package_files(program.appid))
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ignored")
    result = runner.invoke(
        cli,
        ["miniapp", "publish", str(folder), "--server", live_server.url],
        env={"OMO_MINIAPP_SECRET": program.secret},
    )
    assert result.exit_code == 0, result.output
    versions = await client.get(program.path("/versions"), headers=program.owner.headers)
    assert [v["state"] for v in versions.json()] == ["uploaded"]


def test_publish_refuses_an_invalid_folder_before_uploading(tmp_path: Path) -> None:
    files = package_files("mp0000000000000000")
    files["manifest.json"] = json.dumps({"name": "no pages"}).encode()
    folder = _folder(tmp_path / "app", files)
    result = runner.invoke(
        cli,
        ["miniapp", "publish", str(folder), "--server", "http://127.0.0.1:9"],
        env={"OMO_MINIAPP_SECRET": "x"},
    )
    assert result.exit_code == 1
    assert "manifest.missing" in result.output


def test_publish_refuses_a_folder_with_a_symlink(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "app", package_files("mp0000000000000000"))
    os.symlink("/etc/passwd", folder / "pages" / "leak.html")
    result = runner.invoke(
        cli,
        ["miniapp", "publish", str(folder), "--server", "http://127.0.0.1:9"],
        env={"OMO_MINIAPP_SECRET": "x"},
    )
    assert result.exit_code == 2
