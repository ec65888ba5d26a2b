"""Local formats for people: money, dates and times in their time zone, numbers, names, text.

Everything goes through Babel (CLDR), the same data as the translations, so an Italian reads
"1.234,50 €" and "25 nov 2026, 14:05", a Japanese reader "¥1,235" and "2026/11/25 14:05".
Times are stored in UTC and only turned into a person's wall clock here, at the edge.

Text is cut by user-perceived characters (extended grapheme clusters, close to Unicode
UAX #29), so truncation never splits a Chinese character, a letter from its accent, a
flag, or an emoji family joined by zero-width joiners.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_time as babel_format_time
from babel.dates import get_timezone_name
from babel.numbers import format_decimal, format_percent

from omo.core.money import Money

__all__ = [
    "DEFAULT_TIME_ZONE",
    "display_width",
    "format_date",
    "format_datetime",
    "format_money",
    "format_number",
    "format_percent_of",
    "format_time",
    "graphemes",
    "is_time_zone",
    "person_name",
    "time_zone",
    "time_zone_label",
    "time_zones",
    "truncate",
]

DEFAULT_TIME_ZONE = "UTC"
Width = Literal["short", "medium", "long", "full"]


# -- time zones ----------------------------------------------------------------------------


@cache
def time_zones() -> frozenset[str]:
    """Every IANA time zone name this machine's tz database knows ("Asia/Tokyo", "UTC")."""
    return frozenset(available_timezones() | {"UTC"})


def is_time_zone(name: object) -> bool:
    return isinstance(name, str) and name in time_zones()


@cache
def time_zone(name: str | None, default: str = DEFAULT_TIME_ZONE) -> tzinfo:
    """The zone called `name`, else `default`, else UTC: a bad setting never breaks a page."""
    for candidate in (name, default):
        if candidate and is_time_zone(candidate):
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return UTC


def time_zone_label(name: str, locale: str) -> str:
    """A readable name of a zone for a picker: "Japan Time (Tokyo)" / "日本時間（東京）"."""
    try:
        return str(get_timezone_name(ZoneInfo(name), width="long", locale=_locale(locale)))
    except (LookupError, ValueError, ZoneInfoNotFoundError):
        return name


# -- dates, times, numbers, money ----------------------------------------------------------


@cache
def _locale(locale: str) -> Locale:
    return Locale.parse(locale)


def _aware(value: datetime) -> datetime:
    # The database hands back UTC; a naive value is taken as UTC, never as the server's zone.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def format_datetime(
    value: datetime, locale: str, zone: str | tzinfo | None = None, width: Width = "medium"
) -> str:
    """Date and time on the wall clock of `zone` (a person's time zone), in `locale`'s style.

    The time shows hours and minutes ("Nov 26, 2026, 8:30 AM", "2026/11/26 8:30"); the long
    and full widths add the zone ("… 8:30:00 JST").
    """
    tz = zone if isinstance(zone, tzinfo) else time_zone(zone)
    local = _aware(value).astimezone(tz)
    babel_locale = _locale(locale)
    time_width = "short" if width in ("short", "medium") else "long"
    date_text = babel_format_date(local.date(), width, locale=babel_locale)
    time_text = babel_format_time(local, time_width, tzinfo=tz, locale=babel_locale)
    # CLDR's glue pattern, e.g. "{1}, {0}" or "{1} 'at' {0}", as Babel itself applies it.
    glue = str(babel_locale.datetime_formats[width]).replace("'", "")
    return glue.replace("{0}", str(time_text)).replace("{1}", str(date_text))


def format_date(
    value: date | datetime, locale: str, zone: str | tzinfo | None = None, width: Width = "medium"
) -> str:
    """The calendar date; for an instant, the date it is in `zone` (not in UTC)."""
    if isinstance(value, datetime):
        tz = zone if isinstance(zone, tzinfo) else time_zone(zone)
        value = _aware(value).astimezone(tz).date()
    return str(babel_format_date(value, width, locale=_locale(locale)))


def format_time(
    value: datetime | time,
    locale: str,
    zone: str | tzinfo | None = None,
    width: Literal["short", "medium"] = "short",
) -> str:
    """Clock time on the wall clock of `zone` ("14:05", "下午2:05", "2:05 PM")."""
    if isinstance(value, datetime):
        tz = zone if isinstance(zone, tzinfo) else time_zone(zone)
        value = _aware(value).astimezone(tz)
        return str(babel_format_time(value, width, tzinfo=tz, locale=_locale(locale)))
    return str(babel_format_time(value, width, locale=_locale(locale)))


def format_number(value: int | float | Decimal, locale: str) -> str:
    """Grouping and decimal marks of `locale`: 1,234.5 (en), 1.234,5 (it), 1 234,5 (fr)."""
    return str(format_decimal(value, locale=_locale(locale)))


def format_percent_of(value: float | Decimal, locale: str) -> str:
    """0.25 -> "25%" (en), "25 %" (fr)."""
    return str(format_percent(value, locale=_locale(locale)))


def format_money(value: Money, locale: str) -> str:
    """The currency's minor units and the locale's style: "¥1,235", "1,50 €", "US$1.50"."""
    return value.format(locale)


# -- names -------------------------------------------------------------------------------

# Languages in which a name is said family name first (also in Latin letters).
FAMILY_FIRST_LANGUAGES = frozenset({"zh", "ja", "ko", "vi", "hu", "mn"})


def _is_cjk(text: str) -> bool:
    """Written in Han, kana or Hangul (spaces and the middle dot aside)."""
    letters = [c for c in text if not c.isspace() and c not in "・·･"]
    return bool(letters) and all(_is_cjk_char(c) for c in letters)


def _is_cjk_char(char: str) -> bool:
    name = unicodedata.name(char, "")
    return name.startswith(
        ("CJK ", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC", "HALFWIDTH KATAKANA")
    )


def person_name(given: str, family: str, locale: str) -> str:
    """A full name from its parts, in the order and spacing that readers of `locale` expect.

    A name written in Chinese characters, kana or Hangul is always family name first with no
    space (王小明, 山田太郎), whatever the page's language. A name in Latin letters is family
    first in Chinese, Japanese, Korean, Vietnamese and Hungarian pages (Yamada Taro) and given
    name first elsewhere (Taro Yamada).
    """
    given, family = given.strip(), family.strip()
    if not given or not family:
        return given or family
    if _is_cjk(given) and _is_cjk(family):
        return family + given
    language = locale.replace("-", "_").split("_", 1)[0].lower()
    if language in FAMILY_FIRST_LANGUAGES:
        return f"{family} {given}"
    return f"{given} {family}"


# -- text --------------------------------------------------------------------------------

ZWJ = "\u200d"
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
_EMOJI_MODIFIERS = range(0x1F3FB, 0x1F400)
_TAGS = range(0xE0020, 0xE0080)
_HANGUL_L = range(0x1100, 0x1160)
_HANGUL_V = range(0x1160, 0x11A8)
_HANGUL_T = range(0x11A8, 0x1200)
_HANGUL_SYLLABLES = range(0xAC00, 0xD7A4)
# Spacing marks of Indic and Southeast Asian scripts that UAX #29 keeps with the letter.
_EXTENDING_CATEGORIES = frozenset({"Mn", "Me", "Mc"})


def _extends(char: str) -> bool:
    """Joins the cluster before it: combining marks, variation selectors, modifiers, tags."""
    code = ord(char)
    return (
        unicodedata.category(char) in _EXTENDING_CATEGORIES
        or char == ZWJ
        or code in _EMOJI_MODIFIERS
        or code in _TAGS
        or 0xFF9E <= code <= 0xFF9F  # halfwidth katakana voiced sound marks
    )


def _pictographic(char: str) -> bool:
    """Close to Extended_Pictographic: emoji and other pictographs that ZWJ sequences join."""
    code = ord(char)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2300 <= code <= 0x23FF
        or 0x2B00 <= code <= 0x2BFF
        or code in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D)
    )


def _hangul_continues(previous: str, char: str) -> bool:
    p, c = ord(previous), ord(char)
    if p in _HANGUL_L:
        return c in _HANGUL_L or c in _HANGUL_V or c in _HANGUL_SYLLABLES
    lv_or_lvt = p in _HANGUL_SYLLABLES
    if p in _HANGUL_V or (lv_or_lvt and (p - 0xAC00) % 28 == 0):
        return c in _HANGUL_V or c in _HANGUL_T
    if p in _HANGUL_T or lv_or_lvt:
        return c in _HANGUL_T
    return False


def graphemes(text: str) -> list[str]:
    """Split into user-perceived characters (extended grapheme clusters, per UAX #29's rules
    for combining marks, ZWJ emoji sequences, flags, emoji modifiers and tags, Hangul jamo and
    CR LF)."""
    clusters: list[str] = []
    regional_run = 0
    for char in text:
        if not clusters:
            clusters.append(char)
            regional_run = 1 if ord(char) in _REGIONAL_INDICATORS else 0
            continue
        current = clusters[-1]
        previous = current[-1]
        joined = (
            (previous == "\r" and char == "\n")
            or (_extends(char) and previous not in "\r\n")
            or (previous == ZWJ and _pictographic(char) and _has_pictograph(current))
            or (ord(char) in _REGIONAL_INDICATORS and regional_run % 2 == 1)
            or _hangul_continues(previous, char)
        )
        if joined:
            clusters[-1] = current + char
        else:
            clusters.append(char)
        regional_run = regional_run + 1 if ord(char) in _REGIONAL_INDICATORS else 0
    return clusters


def _has_pictograph(cluster: str) -> bool:
    return any(_pictographic(c) for c in cluster)


def _cluster_width(cluster: str) -> int:
    """Columns on a terminal or in a monospace list: 2 for CJK and emoji, else 1."""
    base = cluster[0]
    if unicodedata.east_asian_width(base) in ("W", "F") or (
        len(cluster) > 1 and (_pictographic(base) or ord(base) in _REGIONAL_INDICATORS)
    ):
        return 2
    return 0 if _extends(base) else 1


def display_width(text: str) -> int:
    """How wide `text` shows in a fixed-width grid: "東京" is 4, "Tokyo" is 5."""
    return sum(_cluster_width(cluster) for cluster in graphemes(text))


def truncate(
    text: str, limit: int, ellipsis: str = "…", *, by: Literal["graphemes", "width"] = "graphemes"
) -> str:
    """At most `limit` characters (or display columns with `by="width"`), ellipsis included,
    never cutting inside a character, an accent, a flag or an emoji sequence."""
    if limit <= 0:
        return ""
    clusters = graphemes(text)
    measure = _cluster_width if by == "width" else (lambda _cluster: 1)
    if sum(measure(cluster) for cluster in clusters) <= limit:
        return text
    room = limit - sum(measure(cluster) for cluster in graphemes(ellipsis))
    kept: list[str] = []
    used = 0
    for cluster in clusters:
        size = measure(cluster)
        if used + size > room:
            break
        kept.append(cluster)
        used += size
    if room < 0:
        return ""
    return "".join(kept).rstrip() + ellipsis
