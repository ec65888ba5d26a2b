"""The `omo` command line: serve, migrate, demo."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from omo import demo as demo_world
from omo import i18n_cli, migrations, miniapp_cli
from omo.core.config import Settings
from omo.core.serving import OneWriteHttpToolsProtocol

app = typer.Typer(help="OMO: an open, self-hostable super-app platform.", no_args_is_help=True)
app.add_typer(i18n_cli.app, name="i18n")
app.add_typer(miniapp_cli.app, name="miniapp")
console = Console()


def _settings() -> Settings:
    return Settings()


def _migrate(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with console.status("Migrating the database…"):
        migrations.upgrade(settings.resolved_database_url)


def _second_port(settings: Settings, host: str, port: int) -> int | None:
    """The mini program origin's port when it is this machine's other port (the default);
    None when it is a separate host name that a proxy sends to the same port."""
    from urllib.parse import urlsplit

    origin = urlsplit(settings.resolved_miniapp_origin)
    local = {host, settings.host, "127.0.0.1", "localhost", "0.0.0.0", "::1"}  # noqa: S104
    if origin.hostname in local and origin.port and origin.port != port:
        return origin.port
    return None


def _serve(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    options = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": settings.log_level,
        # Access lines are INFO: above that level uvicorn would still format each request's
        # client address and path for a record that is dropped.
        "access_log": settings.log_level.lower() in ("trace", "debug", "info"),
        "proxy_headers": True,
        # A response's head and body leave in one socket write (see omo.core.serving).
        "http": OneWriteHttpToolsProtocol,
        # No "server: uvicorn" line: it tells an attacker what to look up, and costs a header.
        "server_header": False,
        "ws_max_size": 1024 * 1024,
        # Chat frames are small JSON: compressing each costs more CPU than it saves bytes.
        "ws_per_message_deflate": False,
    }
    second = _second_port(settings, options["host"], options["port"])  # type: ignore[arg-type]
    if second is None or workers > 1:
        if second is not None:
            console.print(
                "[yellow]Several workers: serve the mini program origin "
                f"({settings.resolved_miniapp_origin}) through your proxy.[/yellow]"
            )
        uvicorn.run("omo.app:create_app", factory=True, workers=workers, **options)  # type: ignore[arg-type]
        return
    # One process, two listening sockets: the app's port and the mini program origin's port
    # (the app splits requests by Host, see omo.miniapps.origin).
    config = uvicorn.Config("omo.app:create_app", factory=True, **options)  # type: ignore[arg-type]
    try:
        sockets = [
            _listen(str(options["host"]), int(options["port"])),  # type: ignore[call-overload]
            _listen(str(options["host"]), second),
        ]
    except OSError as error:
        console.print(
            f"[red]Cannot listen for the app and the mini program origin ({error}); "
            "free the ports or set OMO_PORT / OMO_MINIAPP_ORIGIN.[/red]"
        )
        raise typer.Exit(code=2) from error
    uvicorn.Server(config).run(sockets=sockets)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to listen on (default OMO_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default OMO_PORT or 8000)"),
    workers: int = typer.Option(
        1, min=1, help="Worker processes (use PostgreSQL + Redis for >1 node)"
    ),
) -> None:
    """Migrate the database, then serve the app."""
    settings = _settings()
    if workers > 1 and not settings.redis_url:
        # Each process would have its own in-memory broker: a message pushed on one would
        # never reach a person connected to another.
        console.print("[red]Several workers need OMO_REDIS_URL (and PostgreSQL).[/red]")
        raise typer.Exit(code=2)
    _migrate(settings)
    _serve(settings, host, port, workers)


@app.command()
def migrate(revision: str = typer.Option("heads", help="Target revision")) -> None:
    """Bring the database schema up to date."""
    settings = _settings()
    _migrate(settings) if revision == "heads" else migrations.upgrade(
        settings.resolved_database_url, revision
    )
    console.print(f"[green]Database at {revision}.[/green]")


@app.command()
def demo(
    host: str = typer.Option(None, help="Address to listen on"),
    port: int = typer.Option(None, help="Port"),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve after seeding"),
) -> None:
    """Create the demo world (idempotent), print its logins, and serve it."""
    from omo.app import create_app

    # The example mini programs' backends and notifications run on this computer (loopback).
    os.environ.setdefault("OMO_WEBHOOKS_TO_PRIVATE_NETWORKS", "true")
    settings = _settings()
    if port:
        settings = settings.model_copy(update={"port": port})
    _migrate(settings)
    people = asyncio.run(demo_world.seed(create_app(settings)))
    table = Table(title="OMO demo logins (password for all: " + demo_world.DEMO_PASSWORD + ")")
    for column in ("Name", "Phone", "OMO ID"):
        table.add_column(column)
    for person in people:
        table.add_row(person.name, person.phone, person.omo_id)
    console.print(table)
    url = f"http://{host or settings.host}:{port or settings.port}"
    console.print(f"Open [bold]{url}[/bold] — verification codes appear in this log.")
    if serve_after:
        os.environ.setdefault("OMO_DATA_DIR", str(settings.data_dir))
        children = _start_example_backends()
        try:
            _serve(settings, host, port, 1)
        finally:
            for child in children:
                child.terminate()
                child.wait(timeout=10)


def _start_example_backends() -> list[subprocess.Popen[bytes]]:
    """The example mini programs' own servers (examples/miniapps), one process each."""
    from omo.miniapps.demo import BACKENDS

    children = []
    for backend in BACKENDS:
        env = {**os.environ, **backend.env}
        # Our own example script, run by this same interpreter.
        children.append(subprocess.Popen([sys.executable, str(backend.script)], env=env))  # noqa: S603
        console.print(
            f"{backend.name}: mini program code [bold]{backend.code_url}[/bold]; "
            f"staff screen {backend.staff_url}"
        )
    return children


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context, name: str = typer.Argument(help="e.g. messaging, payments")) -> None:
    """Run a benchmark from the checkout's bench/ folder; it prints one JSON line."""
    candidates = [Path.cwd() / "bench", Path(__file__).resolve().parents[2] / "bench"]
    script = next(
        (
            folder / f"{name.replace('-', '_')}.py"
            for folder in candidates
            if (folder / f"{name.replace('-', '_')}.py").exists()
        ),
        None,
    )
    if script is None:
        known = sorted(
            {p.stem.replace("_", "-") for f in candidates if f.exists() for p in f.glob("*.py")}
        )
        console.print(f"[red]No benchmark {name!r}.[/red] Known: {', '.join(known) or 'none'}")
        raise typer.Exit(code=2)
    # The script is one of our own files found above, run by this same interpreter.
    raise typer.Exit(code=subprocess.call([sys.executable, str(script), *ctx.args]))  # noqa: S603


if __name__ == "__main__":
    app()
