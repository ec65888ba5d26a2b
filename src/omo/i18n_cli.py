"""`omo i18n extract | update | compile`: the gettext workflow, wrapping Babel's own commands."""

from __future__ import annotations

from pathlib import Path

import typer
from babel.messages import frontend

from omo.core.i18n import LOCALE_DIR, SUPPORTED

app = typer.Typer(help="Translation catalogues (Babel / gettext).", no_args_is_help=True)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = LOCALE_DIR / "messages.pot"
KEYWORDS = ["_", "gettext", "ngettext:1,2", "N_", "register:3", "ProblemError:2"]
TRANSLATED = [code for code in SUPPORTED if code != "en"]


def _run(*argv: str) -> None:
    frontend.CommandLineInterface().run(["pybabel", "-q", *argv])  # type: ignore[no-untyped-call]


@app.command()
def extract() -> None:
    """Collect every user-facing string of the source into locale/messages.pot."""
    keywords = [arg for keyword in KEYWORDS for arg in ("-k", keyword)]
    _run(
        "extract",
        "-F",
        str(ROOT / "babel.cfg"),
        "--no-location",
        "--sort-output",
        "--project",
        "OMO",
        "-o",
        str(TEMPLATE),
        *keywords,
        str(ROOT / "src" / "omo"),
    )


@app.command()
def update() -> None:
    """Merge the template into each language's catalogue (new strings arrive empty)."""
    for locale in TRANSLATED:
        po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
        command = "update" if po.exists() else "init"
        _run(
            command,
            "-i",
            str(TEMPLATE),
            "-d",
            str(LOCALE_DIR),
            "-l",
            locale,
            "--no-wrap",
            "--no-fuzzy-matching",
        )


@app.command(name="compile")
def compile_catalogues() -> None:
    """Compile .po into the .mo files the server reads."""
    _run("compile", "-d", str(LOCALE_DIR), "--statistics")
