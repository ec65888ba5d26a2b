"""The outbox table as migrated: each event written updates one index on its topic."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import inspect

pytestmark = pytest.mark.asyncio


async def test_the_outbox_has_one_index_on_its_topic_topic_then_id(app: FastAPI) -> None:
    async with app.state.db.engine.connect() as connection:
        indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("outbox_events"))
    on_topic = {index["name"]: index["column_names"] for index in indexes}
    assert on_topic == {"ix_outbox_events_topic_id": ["topic", "id"]}
