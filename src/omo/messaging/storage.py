"""Where media bytes live: the local disk by default, behind a small interface."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from anyio import to_thread


class MediaStorage(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None: ...


class LocalDiskStorage:
    """Files under one folder (`<data_dir>/media`), written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not key or "/" in key or "\\" in key or key.startswith("."):
            raise ValueError("a storage key is one plain file name")
        return self.root / key[:2] / key

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".part")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)

    def _read(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None

    async def put(self, key: str, data: bytes) -> None:
        await to_thread.run_sync(self._write, key, data)

    async def get(self, key: str) -> bytes | None:
        return await to_thread.run_sync(self._read, key)
