"""Secrets never reach the logs: every test's log records are scanned for them."""

from __future__ import annotations

import logging
import re

# Passwords the tests and the demo world use; a log line containing one is a leak.
KNOWN_PASSWORDS = ("correct horse battery", "a long demo password", "omo-demo-2026")

LEAKS = {
    "an unmasked phone number": re.compile(r"\+\d{9,15}\b"),
    "a password hash": re.compile(r"\$argon2"),
    "a bearer token": re.compile(r"Bearer\s+[A-Za-z0-9_\-]{20,}"),
    "a session token": re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{43}(?![A-Za-z0-9_\-])"),
    "a known password": re.compile("|".join(re.escape(p) for p in KNOWN_PASSWORDS)),
}


def leaks_in(text: str) -> list[str]:
    return [f"{what}: …{m.group(0)[:12]}…" for what, p in LEAKS.items() for m in p.finditer(text)]


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a broken record must not break the test it belongs to
            self.lines.append(str(record.msg))
