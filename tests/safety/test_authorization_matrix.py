"""Every route is declared, and answers exactly the roles its declaration allows."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from fastapi import FastAPI
from tests.safety.matrix import Caller, ResourceFactory, Tenancy, check_matrix, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "ACCESS_MATRIX.md"


async def test_every_route_answers_only_the_roles_it_declares(
    app: FastAPI,
    client: httpx.AsyncClient,
    callers: dict[str, Caller],
    resources: dict[str, ResourceFactory],
    tenancies: dict[str, Tenancy],
) -> None:
    violations = await check_matrix(app, client, callers, resources, tenancies)
    assert violations == []


def test_the_documented_matrix_is_up_to_date(app: FastAPI) -> None:
    rendered = render_markdown(app)
    if os.environ.get("OMO_WRITE_DOCS") == "1":
        DOC.write_text(rendered)
    assert DOC.exists()
    assert DOC.read_text() == rendered, (
        "docs/ACCESS_MATRIX.md is stale: OMO_WRITE_DOCS=1 make unit PYTEST_ARGS=tests/safety"
    )
