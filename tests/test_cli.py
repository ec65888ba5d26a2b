"""The `omo` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from omo.cli import app

runner = CliRunner()


def test_every_command_has_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "demo", "i18n", "bench"):
        assert command in result.output
        assert runner.invoke(app, [command, "--help"]).exit_code == 0


def test_several_workers_without_redis_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMO_REDIS_URL", raising=False)
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "OMO_REDIS_URL" in result.output


def test_migrate_creates_the_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("OMO_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "omo.sqlite3").exists()


def test_an_unknown_benchmark_is_refused_with_the_known_ones() -> None:
    result = runner.invoke(app, ["bench", "no-such-bench"])
    assert result.exit_code == 2
    assert "No benchmark" in result.output
