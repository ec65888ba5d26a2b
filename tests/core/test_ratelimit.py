from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from omo.core.ratelimit import POOL_SIZE, Limit, RateLimited, RateLimiter

pytestmark = pytest.mark.asyncio

LOGIN = Limit("login", 3, 60)


def redis_url() -> str:
    """The test Redis, or skip; a CI run that promised services fails instead."""
    url = os.environ.get("OMO_TEST_REDIS_URL")
    if url:
        return url
    if os.environ.get("OMO_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail("OMO_TEST_REQUIRE_SERVICES=1 but OMO_TEST_REDIS_URL is not set")
    pytest.skip("OMO_TEST_REDIS_URL is not set")


@pytest.fixture
def prefix() -> str:
    return f"omo-test-{uuid.uuid4().hex}:"


@pytest_asyncio.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RateLimiter]:
    url = redis_url() if request.param == "redis" else None
    rate_limiter = RateLimiter(url, prefix)
    yield rate_limiter
    await rate_limiter.close()


async def hit_until_limited(limiter: RateLimiter, limit: Limit, key: str) -> RateLimited:
    for _ in range(limit.amount):
        await limiter.hit(limit, key)
    with pytest.raises(RateLimited) as refused:
        await limiter.hit(limit, key)
    return refused.value


async def test_allows_amount_hits_then_refuses_with_retry_after(limiter: RateLimiter) -> None:
    refused = await hit_until_limited(limiter, LOGIN, "+4915112345678")
    assert isinstance(refused.retry_after, int)
    assert 1 <= refused.retry_after <= LOGIN.per_seconds
    assert refused.limit == LOGIN


async def test_refused_hits_keep_being_refused(limiter: RateLimiter) -> None:
    await hit_until_limited(limiter, LOGIN, "k")
    for _ in range(3):
        with pytest.raises(RateLimited):
            await limiter.hit(LOGIN, "k")


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    await hit_until_limited(limiter, LOGIN, "203.0.113.7")
    await limiter.hit(LOGIN, "203.0.113.8")


async def test_limits_are_independent(limiter: RateLimiter) -> None:
    await hit_until_limited(limiter, LOGIN, "k")
    await limiter.hit(Limit("code", 1, 60), "k")


async def test_reset_clears_the_count(limiter: RateLimiter) -> None:
    await hit_until_limited(limiter, LOGIN, "k")
    await limiter.reset(LOGIN, "k")
    await hit_until_limited(limiter, LOGIN, "k")


async def test_reset_of_an_unknown_key_is_harmless(limiter: RateLimiter) -> None:
    await limiter.reset(LOGIN, "never-seen")


async def test_retry_after_is_at_least_one_second(limiter: RateLimiter) -> None:
    refused = await hit_until_limited(limiter, Limit("burst", 1, 1), "k")
    assert refused.retry_after == 1


async def test_nodes_share_the_budget_through_redis(prefix: str) -> None:
    url = redis_url()
    node_a, node_b = RateLimiter(url, prefix), RateLimiter(url, prefix)
    try:
        for _ in range(LOGIN.amount):
            await node_a.hit(LOGIN, "k")
        with pytest.raises(RateLimited):
            await node_b.hit(LOGIN, "k")
    finally:
        await node_a.close()
        await node_b.close()


async def test_redis_keys_carry_the_prefix_and_limit_name(prefix: str) -> None:
    url = redis_url()
    rate_limiter = RateLimiter(url, prefix)
    client = Redis.from_url(url, decode_responses=True)
    try:
        await rate_limiter.hit(LOGIN, "k")
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        assert len(keys) == 1
        assert keys[0].startswith(f"{prefix}ratelimit:login/")
        await rate_limiter.reset(LOGIN, "k")
        assert [key async for key in client.scan_iter(match=f"{prefix}*")] == []
    finally:
        await rate_limiter.close()
        await client.connection_pool.disconnect()


@pytest.mark.parametrize(
    ("name", "amount", "per_seconds"), [("", 1, 1), ("a/b", 1, 1), ("x", 0, 1), ("x", 1, 0)]
)
async def test_limit_rejects_nonsense(name: str, amount: int, per_seconds: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        Limit(name, amount, per_seconds)


async def test_a_burst_larger_than_the_pool_waits_instead_of_failing(
    limiter: RateLimiter,
) -> None:
    burst = Limit("burst", 1_000, 60)
    hits = [limiter.hit(burst, f"key-{n % 7}") for n in range(3 * POOL_SIZE)]
    await asyncio.gather(*hits)  # every hit counted, none raised for want of a connection
