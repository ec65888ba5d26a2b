"""The log scanner used after every test recognises what must never be logged."""

from __future__ import annotations

import pytest
from tests.support.secrets_guard import leaks_in

from omo.identity.sms import mask_phone

# Shaped like secrets.token_urlsafe(32); fixed, so every xdist worker collects the same tests.
TOKEN = "q0aZ3xV_7r-Kf2LmN8pQs4Tu6Wy9Ab1Cd3Ef5Gh7Ij9"


@pytest.mark.parametrize(
    "line",
    [
        "login failed for +393401234567",
        "stored $argon2id$v=19$m=65536,t=3,p=4$abc",
        "header Authorization: Bearer " + TOKEN,
        "issued " + TOKEN,
        "password was correct horse battery",
    ],
)
def test_a_secret_in_a_log_line_is_found(line: str) -> None:
    assert leaks_in(line)


def test_what_the_platform_logs_on_purpose_is_not_a_leak() -> None:
    line = f"SMS to {mask_phone('+393401234567')}: Your OMO code is 123456."
    assert leaks_in(line) == []
    assert leaks_in("GET /api/v1/identity/devices/0192f2a4-7b1c-7d2e-8f00-aa11bb22cc33") == []
