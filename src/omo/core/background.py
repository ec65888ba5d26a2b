"""Periodic background work of a context (outbox consumers, retries), one task each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("omo.background")


def run_every(
    seconds: float, work: Callable[[], Awaitable[object]], what: str
) -> asyncio.Task[None]:
    """Run `work` every `seconds` until the task is cancelled; a failure is logged and the
    next round tries again (the work is idempotent: outbox cursors, retried deliveries)."""

    async def forever() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:
                logger.exception("%s failed; trying again in %s s", what, seconds)

    return asyncio.create_task(forever(), name=f"omo-{what}")


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task and wait until it has stopped."""
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
