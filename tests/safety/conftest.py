from __future__ import annotations

import httpx
import pytest
from tests.safety.factories_care import FACTORIES as CARE_FACTORIES
from tests.safety.factories_messaging import FACTORIES as MESSAGING_FACTORIES
from tests.safety.factories_miniapps import FACTORIES as MINIAPPS_FACTORIES
from tests.safety.factories_miniapps import developer_tenancy
from tests.safety.factories_pay import FACTORIES as PAY_FACTORIES
from tests.safety.factories_pay import merchant_of
from tests.safety.factories_social import FACTORIES as SOCIAL_FACTORIES
from tests.safety.matrix import Caller, ResourceFactory, Tenancy

from omo.core.config import Settings

PASSWORD = "correct horse battery"
OPERATOR_OMO_ID = "matrix-operator"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The platform operator (OMO_OPERATORS) is a person the matrix logs in as."""
    return settings.model_copy(update={"operators": OPERATOR_OMO_ID})


async def person(client: httpx.AsyncClient, app: object, phone: str, name: str) -> Caller:
    """A real person of the platform (created the way the demo world creates people)."""
    await app.state.identity.ensure_person(phone, PASSWORD, name)  # type: ignore[attr-defined]

    async def log_in() -> dict[str, str]:
        login = await client.post(
            "/api/v1/identity/login", json={"phone": phone, "password": PASSWORD}
        )
        client.cookies.clear()
        return {"Authorization": f"Bearer {login.json()['token']}"}

    return Caller(await log_in(), renew=log_in)


@pytest.fixture
async def callers(client: httpx.AsyncClient, app: object) -> dict[str, Caller]:
    return {
        "anonymous": Caller({}),
        "person": await person(client, app, "+33612345678", "Camille"),
        "owner": await person(client, app, "+393401234567", "Giulia"),
    }


async def _device(client: httpx.AsyncClient, owner: Caller) -> dict[str, str]:
    devices = await client.get("/api/v1/identity/devices", headers=owner.headers)
    return {"device_id": devices.json()[0]["id"]}


async def _organisation(client: httpx.AsyncClient, member: Caller) -> dict[str, str]:
    org = await client.post(
        "/api/v1/accounts/organisations", json={"name": "Matrix brand"}, headers=member.headers
    )
    return {"organisation_id": org.json()["id"]}


async def _official_account(client: httpx.AsyncClient, member: Caller) -> dict[str, str]:
    org = (await _organisation(client, member))["organisation_id"]
    account = await client.post(
        f"/api/v1/accounts/organisations/{org}/accounts",
        json={"kind": "subscription", "name": "Matrix account"},
        headers=member.headers,
    )
    return {"organisation_id": org, "account_id": account.json()["id"]}


async def _library_template(client: httpx.AsyncClient, operator: Caller) -> dict[str, str]:
    added = await client.post(
        "/api/v1/accounts/operator/template-library",
        json={"title": "Matrix", "content": "{{first.DATA}}", "primary_industry": "IT"},
        headers=operator.headers,
    )
    return {"template_id_short": added.json()["template_id_short"]}


@pytest.fixture
def resources() -> dict[str, ResourceFactory]:
    """How to create each kind of owned resource; a new kind without a factory fails."""
    return {
        "identity.device": _device,
        "accounts.organisation": _organisation,
        "accounts.account": _official_account,
        "accounts.library_template": _library_template,
        **MESSAGING_FACTORIES,
        **PAY_FACTORIES,
        **CARE_FACTORIES,
        **MINIAPPS_FACTORIES,
        **SOCIAL_FACTORIES,
    }


@pytest.fixture
async def tenancies(
    client: httpx.AsyncClient, app: object, callers: dict[str, Caller]
) -> dict[str, Tenancy]:
    """Brand members: the resource factories make the insider a member (owner) of brand A;
    the outsider is a member (owner) of another brand, and must be refused brand A's things."""
    outsider = await person(client, app, "+447911123456", "Olivia")
    await _official_account(client, outsider)
    await merchant_of(client, outsider)  # and a member of its own merchant
    operator = await person(client, app, "+393471112233", "Ornella")
    renamed = await client.put(
        "/api/v1/identity/me/omo-id", json={"omo_id": OPERATOR_OMO_ID}, headers=operator.headers
    )
    assert renamed.status_code == 200, renamed.text
    return {
        "brand-member": Tenancy(insider=callers["owner"], outsider=outsider),
        # anyone who is not an operator, a brand's owner included, is refused
        "operator": Tenancy(insider=operator, outsider=callers["owner"]),
        # care: the owner is an agent of the team serving brand A's account; the outsider
        # owns (and serves) another brand
        "care-agent": Tenancy(insider=callers["owner"], outsider=outsider),
        "miniapp": await developer_tenancy(client, callers["owner"], outsider),
    }
