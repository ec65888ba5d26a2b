"""Webhook destinations: public http(s) only, unless the operator allows private networks."""

from __future__ import annotations

import pytest

from omo.core.outbound import RefusedDestination, check_destination

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://[fe80::1]/",
    ],
)
async def test_private_and_special_addresses_are_refused(url: str) -> None:
    with pytest.raises(RefusedDestination, match="private network"):
        await check_destination(url, allow_private=False)


@pytest.mark.parametrize(
    "url", ["ftp://example.org/", "file:///etc/passwd", "https:///nohost", "http://u:p@1.1.1.1/"]
)
async def test_other_schemes_missing_hosts_and_credentials_are_refused(url: str) -> None:
    with pytest.raises(RefusedDestination):
        await check_destination(url, allow_private=True)


async def test_a_public_address_is_allowed() -> None:
    await check_destination("https://1.1.1.1/notify", allow_private=False)


async def test_the_operator_may_allow_private_networks() -> None:
    await check_destination("http://127.0.0.1:8080/hook", allow_private=True)


async def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(RefusedDestination, match="resolve"):
        await check_destination("https://no-such-host.invalid/", allow_private=False)
