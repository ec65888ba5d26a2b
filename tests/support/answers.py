"""Comparing two HTTP answers byte for byte (a route answered without the router against the
router's own answer)."""

from __future__ import annotations

import re

import httpx

Answer = tuple[int, list[tuple[str, str]], bytes]


def comparable(response: httpx.Response) -> Answer:
    """Status, headers in order (the per-request CSP nonce blanked) and body bytes."""
    headers = [
        (
            name,
            re.sub(r"'nonce-[^']*'", "'nonce-'", value)
            if name == "content-security-policy"
            else value,
        )
        for name, value in response.headers.multi_items()
    ]
    return response.status_code, headers, response.content
