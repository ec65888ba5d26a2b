from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.support.people import PASSWORD, MakePerson, Person, person

__all__ = ["PASSWORD", "MakePerson", "Person", "person"]  # shared with this folder's tests

from omo.miniapps.package import build_zip

API = "/api/v1/miniapps"
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def manifest(appid: str, code: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app_id": appid,
        "name": "Table ordering",
        "icons": [{"src": "icon.png", "sizes": "1x1"}],
        "pages": ["pages/menu", "pages/order"],
        "platform_version": {"min_code": 1},
        "version": {"code": code, "name": f"1.0.{code}"},
        "req_permissions": [{"name": "payment", "reason": "To pay for your order"}],
        "window": {"navigation_bar_title_text": "Menu"},
    }
    body.update(overrides)
    return body


def package_files(appid: str, code: int = 1, **overrides: Any) -> dict[str, bytes]:
    return {
        "manifest.json": json.dumps(manifest(appid, code, **overrides)).encode(),
        "icon.png": PNG_1PX,
        "pages/menu.html": b"<!doctype html><title>Menu</title><h1>Menu</h1>",
        "pages/order.html": b"<!doctype html><title>Order</title><h1>Order</h1>",
        "app.js": b"console.log('hi')",
    }


def package(appid: str, code: int = 1, **overrides: Any) -> bytes:
    return build_zip(package_files(appid, code, **overrides))


@dataclass
class Program:
    owner: Person
    organisation_id: str
    id: str
    appid: str
    secret: str

    def path(self, suffix: str = "") -> str:
        return f"{API}/apps/{self.id}{suffix}"

    @property
    def basic(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.appid}:{self.secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


MakeProgram = Callable[..., Awaitable[Program]]


@pytest.fixture
def make_program(client: httpx.AsyncClient) -> MakeProgram:
    async def make(owner: Person, name: str = "Trattoria") -> Program:
        org = await client.post(
            "/api/v1/accounts/organisations", json={"name": name}, headers=owner.headers
        )
        assert org.status_code == 201, org.text
        org_id = org.json()["id"]
        created = await client.post(
            f"{API}/organisations/{org_id}/apps", json={"name": name}, headers=owner.headers
        )
        assert created.status_code == 201, created.text
        body = created.json()
        return Program(owner, org_id, body["id"], body["appid"], body["secret"])

    return make


@pytest.fixture
async def owner(person: MakePerson) -> Person:
    return await person("+393401234567", "Giulia")


@pytest.fixture
async def diner(person: MakePerson) -> Person:
    return await person("+33612345678", "Camille")


@pytest.fixture
async def program(make_program: MakeProgram, owner: Person) -> Program:
    return await make_program(owner)


async def upload(client: httpx.AsyncClient, program: Program, data: bytes) -> httpx.Response:
    return await client.post(
        program.path("/versions"),
        content=data,
        headers={**program.owner.headers, "Content-Type": "application/zip"},
    )


async def released(client: httpx.AsyncClient, program: Program, code: int = 1) -> str:
    """Upload, try and release version `code`; its id."""
    response = await upload(client, program, package(program.appid, code))
    assert response.status_code == 201, response.text
    version_id = response.json()["id"]
    headers = program.owner.headers
    trial = await client.post(program.path(f"/versions/{version_id}/trial"), headers=headers)
    assert trial.status_code == 200, trial.text
    done = await client.post(program.path(f"/versions/{version_id}/release"), headers=headers)
    assert done.status_code == 200, done.text
    return str(version_id)
