"""Contract fuzzing: every operation of the OpenAPI document, driven by schemathesis against a
real `omo serve` process, authenticated as a person of the demo world.

No response may be a 5xx; every response must match its documented status, content type and
schema; every error must be problem+json with a stable `type`. The budget of examples per
operation is OMO_FUZZ_EXAMPLES (10 by default; the nightly profile sets 200).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.conftest import BACKENDS, POSTGRES_URL, REDIS_URL, _admin, run_in_thread
from tests.support.live import LiveServer, SmsGateway, start_live_server

from omo import demo, migrations
from omo.app import create_app
from omo.core.config import Settings

pytestmark = pytest.mark.xdist_group("fuzz")

EXAMPLES = int(os.environ.get("OMO_FUZZ_EXAMPLES", "10"))


@schemathesis.check
def problem_details(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is RFC 9457 problem+json with a stable, documented `type`."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), content_type
    body = response.json()
    assert body["type"].startswith("/problems/"), body
    assert isinstance(body["title"], str), body
    assert body["title"], body
    assert body["status"] == response.status_code, body
    return True


class FuzzTarget:
    """A server of its own (own database), a demo person, and a pool of their sessions."""

    def __init__(self, server: LiveServer, settings: Settings) -> None:
        self.server = server
        self.settings = settings
        self.tokens: list[str] = []

    def headers(self) -> dict[str, str]:
        # The fuzzer may log the session out or revoke its device; then take a fresh one.
        while True:
            if not self.tokens:
                self.tokens = _issue_sessions(self.settings, 20)
            token = self.tokens[-1]
            check = httpx.get(
                self.server.url + "/api/v1/identity/me",
                headers={"Authorization": f"Bearer {token}"},
            )
            if check.status_code == 200:
                return {"Authorization": f"Bearer {token}"}
            self.tokens.pop()


def _issue_sessions(settings: Settings, count: int) -> list[str]:
    """Sessions for the demo person, issued by the identity service as a login would."""
    tokens: list[str] = []

    async def issue() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            identity = app.state.identity
            person = demo.PEOPLE[1]
            user_id = await identity.ensure_person(
                person.phone, demo.DEMO_PASSWORD, person.name, person.omo_id
            )
            for _ in range(count):
                issued = await identity._issue_session(
                    user_id,
                    kind="app",
                    device_name="fuzzer",
                    user_agent="schemathesis",
                    client_address="127.0.0.1",
                )
                tokens.append(issued.token)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(issue())).result()
    return tokens


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    database_url, drop = None, None
    if request.param == "postgres":
        assert POSTGRES_URL
        name = f"omo_fuzz_{uuid.uuid4().hex[:10]}"
        run_in_thread(lambda: _admin(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
        database_url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    settings = Settings(  # type: ignore[call-arg]
        data_dir=data_dir,
        secret_key="fuzz-" + uuid.uuid4().hex,
        database_url=database_url,
        redis_url=REDIS_URL if request.param == "postgres" else None,
        redis_prefix=f"omofuzz:{uuid.uuid4().hex[:8]}:",
    )
    migrations.upgrade(settings.resolved_database_url)
    gateway = SmsGateway.start()
    with start_live_server(settings, gateway, data_dir) as server:
        yield FuzzTarget(server, settings)
    gateway.stop()
    if drop:
        run_in_thread(lambda: _admin(POSTGRES_URL or "", drop))


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    problem_details,
]


def _operations(target: FuzzTarget) -> list[Any]:
    schema = schemathesis.openapi.from_url(target.server.url + "/api/v1/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation: Any, target: FuzzTarget) -> None:
    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=target.headers(), checks=CHECKS)

    run()


def test_the_fuzzer_reaches_every_operation(fuzz_target: FuzzTarget) -> None:
    labels = {operation.label for operation in _operations(fuzz_target)}
    assert "POST /api/v1/identity/login" in labels
    assert len(labels) >= 15


def test_every_operation_honours_its_contract(fuzz_target: FuzzTarget, subtests: Any) -> None:
    for operation in _operations(fuzz_target):
        with subtests.test(operation=operation.label):
            _fuzz(operation, fuzz_target)
