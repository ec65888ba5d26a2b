"""`omo miniapp publish DIR`: pack a mini program folder, validate it the way the server
will, and upload it as a new version with the mini program's appid and secret."""

from __future__ import annotations

from pathlib import Path

import httpx
import typer
from rich.console import Console

from omo.miniapps.package import PackageInvalid, build_zip, load_package

app = typer.Typer(help="Mini program developer tools.", no_args_is_help=True)
console = Console()


def pack(folder: Path) -> bytes:
    """The folder's files as a package zip (hidden files left out, symlinks refused)."""
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink():
            raise PackageInvalid([])  # refused below with a clear message
        if path.is_file():
            files[relative.as_posix()] = path.read_bytes()
    return build_zip(files)


@app.command()
def publish(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="The mini program"),
    server: str = typer.Option(
        "http://127.0.0.1:8000", envvar="OMO_MINIAPP_SERVER", help="The OMO server"
    ),
    appid: str = typer.Option(None, envvar="OMO_MINIAPP_APPID", help="Default: manifest app_id"),
    secret: str = typer.Option(..., envvar="OMO_MINIAPP_SECRET", help="The mini program secret"),
) -> None:
    """Validate and upload FOLDER as a new version (state: uploaded)."""
    if any(p.is_symlink() for p in folder.rglob("*")):
        console.print("[red]The folder holds symbolic links; packages may not.[/red]")
        raise typer.Exit(code=2)
    data = pack(folder)
    try:
        package = load_package(data)
    except PackageInvalid as invalid:
        console.print("[red]The package is not valid:[/red]")
        for violation in invalid.violations:
            console.print(f"  {violation.code}  ({violation.where})")
        raise typer.Exit(code=1) from None
    target = appid or package.manifest.app_id
    response = httpx.post(
        f"{server.rstrip('/')}/api/v1/miniapps/dev/{target}/versions",
        content=data,
        headers={"Content-Type": "application/zip"},
        auth=(target, secret),
        timeout=30.0,
    )
    if response.status_code != 201:
        console.print(f"[red]Upload refused ({response.status_code}):[/red] {response.text}")
        raise typer.Exit(code=1)
    body = response.json()
    console.print(
        f"[green]Uploaded {package.manifest.name} {body['name']} (code {body['code']}), "
        f"{body['packed_size']} bytes packed, {body['unpacked_size']} unpacked; "
        f"state {body['state']}.[/green]"
    )
