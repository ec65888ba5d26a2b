"""Local formats: money, dates and times in a person's zone, numbers, names, CJK-safe text."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omo.core.formatting import (
    display_width,
    format_date,
    format_datetime,
    format_money,
    format_number,
    format_percent_of,
    format_time,
    graphemes,
    is_time_zone,
    person_name,
    time_zone,
    time_zone_label,
    truncate,
)
from omo.core.money import Money

# 23:30 UTC on 25 November is already the 26th in Tokyo and Shanghai, still the 25th in Rome.
LATE = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)


# -- money -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "locale", "expected"),
    [
        (Money(123456, "EUR"), "it", "1.234,56\xa0€"),
        (Money(123456, "EUR"), "fr", "1\u202f234,56\xa0€"),
        (Money(123456, "EUR"), "en", "€1,234.56"),
        (Money(1235, "JPY"), "ja", "￥1,235"),
        (Money(1235, "JPY"), "en", "¥1,235"),
        (Money(1050, "CNY"), "zh_Hans", "¥10.50"),
    ],
)
def test_money_uses_minor_units_and_the_locale(money: Money, locale: str, expected: str) -> None:
    assert format_money(money, locale) == expected


def test_yen_never_shows_decimals() -> None:
    for locale in ("en", "zh_Hans", "it", "fr", "ja"):
        assert "," not in format_money(Money(5, "JPY"), locale).replace("1,", "")
        assert "." not in format_money(Money(5, "JPY"), locale)


# -- dates and times ---------------------------------------------------------------------


def test_a_datetime_is_shown_on_the_wall_clock_of_the_persons_zone() -> None:
    assert format_datetime(LATE, "ja", "Asia/Tokyo") == "2026/11/26 8:30"
    assert format_datetime(LATE, "it", "Europe/Rome") == "26 nov 2026, 00:30"
    assert format_datetime(LATE, "en", "America/New_York") == "Nov 25, 2026, 6:30\u202fPM"
    assert format_datetime(LATE, "zh_Hans", "Asia/Shanghai") == "2026年11月26日 07:30"
    assert format_datetime(LATE, "fr", "UTC") == "25 nov. 2026, 23:30"


def test_long_widths_name_the_zone() -> None:
    assert format_datetime(LATE, "ja", "Asia/Tokyo", "long").endswith("JST")


def test_the_date_is_the_local_date() -> None:
    assert format_date(LATE, "en", "Asia/Tokyo") == "Nov 26, 2026"
    assert format_date(LATE, "en", "Europe/London") == "Nov 25, 2026"
    assert format_date(date(2026, 1, 2), "fr") == "2 janv. 2026"


def test_times() -> None:
    assert format_time(LATE, "en", "Asia/Tokyo") == "8:30\u202fAM"
    assert format_time(LATE, "fr", ZoneInfo("Europe/Paris")) == "00:30"
    assert format_time(time(14, 5), "it") == "14:05"


def test_a_naive_datetime_is_taken_as_utc_not_as_the_servers_zone() -> None:
    naive = LATE.replace(tzinfo=None)
    assert format_datetime(naive, "en", "Asia/Tokyo") == format_datetime(LATE, "en", "Asia/Tokyo")


def test_summer_time_is_applied() -> None:
    july = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert format_time(july, "it", "Europe/Rome") == "14:00"
    assert format_time(LATE.replace(hour=12), "it", "Europe/Rome") == "13:30"


def test_time_zones_are_validated_and_a_bad_one_falls_back() -> None:
    assert is_time_zone("Asia/Shanghai")
    assert is_time_zone("UTC")
    assert not is_time_zone("Mars/Olympus_Mons")
    assert not is_time_zone("../../etc/passwd")
    assert not is_time_zone(None)
    assert time_zone("Mars/Olympus_Mons", "Europe/Rome") == ZoneInfo("Europe/Rome")
    assert time_zone(None, "nonsense") is UTC
    assert format_datetime(LATE, "en", "not a zone") == format_datetime(LATE, "en", "UTC")


def test_time_zone_labels_are_translated() -> None:
    assert time_zone_label("Asia/Tokyo", "ja") == "日本時間"
    assert time_zone_label("Asia/Tokyo", "en") == "Japan Time"
    assert time_zone_label("Nowhere/Else", "en") == "Nowhere/Else"


# -- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "1,234,567.5"),
        ("it", "1.234.567,5"),
        ("fr", "1\u202f234\u202f567,5"),
        ("ja", "1,234,567.5"),
        ("zh_Hans", "1,234,567.5"),
    ],
)
def test_numbers(locale: str, expected: str) -> None:
    assert format_number(Decimal("1234567.5"), locale) == expected


def test_percent() -> None:
    assert format_percent_of(0.25, "en") == "25%"
    assert format_percent_of(0.25, "fr") == "25\xa0%"


# -- names -------------------------------------------------------------------------------


def test_names_in_cjk_scripts_are_family_first_without_a_space_in_every_language() -> None:
    for locale in ("en", "zh_Hans", "it", "fr", "ja"):
        assert person_name("太郎", "山田", locale) == "山田太郎"
        assert person_name("小明", "王", locale) == "王小明"


def test_latin_names_follow_the_pages_custom() -> None:
    assert person_name("Taro", "Yamada", "ja") == "Yamada Taro"
    assert person_name("Xiaoming", "Wang", "zh_Hans") == "Wang Xiaoming"
    assert person_name("Giulia", "Rossi", "it") == "Giulia Rossi"
    assert person_name("Camille", "Martin", "fr") == "Camille Martin"
    assert person_name("Taro", "Yamada", "en") == "Taro Yamada"


def test_a_missing_part_leaves_the_other() -> None:
    assert person_name("Giulia", "", "it") == "Giulia"
    assert person_name("", " 山田 ", "ja") == "山田"
    assert person_name("", "", "en") == ""


# -- text --------------------------------------------------------------------------------

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # man, woman, girl, boy
FLAG_JP = "\U0001f1ef\U0001f1f5"
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"
E_ACUTE = "e\u0301"
GA = "\u1100\u1161\u11a8"  # Hangul jamo L V T, one syllable


def test_grapheme_clusters() -> None:
    text = f"{FAMILY}{FLAG_JP}{E_ACUTE}東京{THUMBS_MEDIUM}{GA}!\r\n"
    assert graphemes(text) == [FAMILY, FLAG_JP, E_ACUTE, "東", "京", THUMBS_MEDIUM, GA, "!", "\r\n"]


def test_two_flags_are_two_clusters() -> None:
    assert graphemes(FLAG_JP + FLAG_JP) == [FLAG_JP, FLAG_JP]


def test_truncation_never_cuts_a_character_or_sequence() -> None:
    assert truncate("東京都渋谷区神南", 5) == "東京都渋…"
    assert truncate("東京都", 5) == "東京都"
    assert truncate(f"{FAMILY}{FLAG_JP}{E_ACUTE}{E_ACUTE}", 3) == f"{FAMILY}{FLAG_JP}…"
    assert truncate(f"caf{E_ACUTE} au lait", 5) == f"caf{E_ACUTE}…"
    assert truncate("abc", 0) == ""
    assert truncate("abcdef", 1) == "…"


def test_truncation_by_display_width_counts_cjk_as_two_columns() -> None:
    assert display_width("東京") == 4
    assert display_width("Tokyo") == 5
    assert display_width(FAMILY) == 2
    assert truncate("東京都渋谷区", 7, by="width") == "東京都…"
    assert truncate("Tokyo Shibuya", 7, by="width") == "Tokyo…"


@given(st.text(max_size=40), st.integers(min_value=1, max_value=30))
def test_truncation_keeps_a_prefix_of_whole_clusters(text: str, limit: int) -> None:
    result = truncate(text, limit)
    if result == text:
        return
    assert result.endswith("…")
    body = result[: -len("…")]
    clusters = graphemes(text)
    # What is kept is exactly the text's first whole clusters (trailing spaces dropped).
    assert any("".join(clusters[:n]).rstrip() == body for n in range(limit))
    assert len(graphemes(body)) <= limit - 1
