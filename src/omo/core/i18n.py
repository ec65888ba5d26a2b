"""Translations (gettext catalogues through Babel) and the choice of a request's locale."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel import Locale
from babel.support import NullTranslations, Translations
from starlette.requests import HTTPConnection

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
SUPPORTED = ("en", "zh_Hans", "it", "fr", "ja")
DEFAULT = "en"


@cache
def translations(locale: str) -> NullTranslations:
    if locale == "en":
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [locale], domain="messages")


def _supported_for(tag: str) -> str | None:
    tag = tag.strip().replace("-", "_")
    if not tag or tag == "*":
        return None
    language = tag.split("_", 1)[0].lower()
    if language == "zh":
        # Simplified is what we ship; Traditional readers still read it better than English.
        return "zh_Hans"
    return language if language in SUPPORTED else None


def negotiate(accept_language: str | None, default: str = DEFAULT) -> str:
    """Pick the best supported locale from an Accept-Language header."""
    if not accept_language:
        return default
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        supported = _supported_for(tag)
        if supported and quality > 0:
            weighted.append((-quality, position, supported))
    return sorted(weighted)[0][2] if weighted else default


def locale_of(connection: HTTPConnection) -> str:
    chosen = getattr(connection.state, "locale", None)
    if isinstance(chosen, str):
        return chosen
    return negotiate(connection.headers.get("accept-language"))


def gettext_for(connection: HTTPConnection) -> Callable[[str], str]:
    return translations(locale_of(connection)).gettext


def babel_locale(locale: str) -> Locale:
    return Locale.parse(locale)
