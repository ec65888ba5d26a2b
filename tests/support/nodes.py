"""Real `omo serve` processes started as an operator would (configured only by OMO_*
variables), which a test may kill with SIGKILL and start again on the same database."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from tests.support.live import free_port, server_environment

from omo.core.config import Settings

Node = Callable[[], Awaitable["Running"]]


class Running:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
async def start_node(settings: Settings, tmp_path: Path) -> AsyncIterator[Node]:
    """Start `omo serve` as an operator would, configured only by OMO_* variables."""
    started: list[Running] = []

    async def _start() -> Running:
        port = free_port()
        env = server_environment(settings, None, port)
        log = tmp_path / f"node-{len(started)}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "omo.cli", "serve"], env=env, stdout=output, stderr=output
            )
        node = Running(process, port, log)
        started.append(node)
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                if process.poll() is not None:
                    raise AssertionError("node exited:\n" + log.read_text())
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        return node
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("node did not start:\n" + log.read_text())

    yield _start
    for node in started:
        if node.process.poll() is None:
            node.process.terminate()
            node.process.wait(10)
