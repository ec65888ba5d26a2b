from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from babel.numbers import list_currencies
from hypothesis import given
from hypothesis import strategies as st

from omo.core.money import CurrencyMismatch, Money, MoneyError, minor_units

CURRENCIES = sorted(list_currencies())
amounts = st.integers(min_value=-(10**30), max_value=10**30)
currencies = st.sampled_from(CURRENCIES)


@st.composite
def money(draw: st.DrawFn, currency: str | None = None) -> Money:
    return Money(draw(amounts), currency or draw(currencies))


@st.composite
def same_currency_pair(draw: st.DrawFn) -> tuple[Money, Money]:
    currency = draw(currencies)
    return draw(money(currency)), draw(money(currency))


# --- construction -------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "places"), [("JPY", 0), ("EUR", 2), ("KWD", 3)])
def test_minor_units_follow_iso_4217(currency: str, places: int) -> None:
    assert minor_units(currency) == places


@pytest.mark.parametrize("amount", [1.5, Decimal("1"), "100", True, None])
def test_amount_must_be_an_int(amount: Any) -> None:
    with pytest.raises(TypeError):
        Money(amount, "EUR")


@pytest.mark.parametrize("currency", ["eur", "Eur", "ZZZ", "", "EURO"])
def test_currency_must_be_a_known_upper_case_code(currency: str) -> None:
    with pytest.raises(MoneyError):
        Money(1, currency)
    with pytest.raises(MoneyError):
        minor_units(currency)


def test_zero() -> None:
    assert Money.zero("KWD") == Money(0, "KWD")


# --- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1.50", "EUR", 150),
        ("1.5", "EUR", 150),
        ("-0.01", "EUR", -1),
        ("+2", "EUR", 200),
        ("1235", "JPY", 1235),
        ("1235.00", "JPY", 1235),
        ("1.234", "KWD", 1234),
        ("0.000", "KWD", 0),
        ("123456789012345678901234567890.12", "EUR", 12345678901234567890123456789012),
    ],
)
def test_of_parses_exactly(text: str, currency: str, minor: int) -> None:
    assert Money.of(text, currency) == Money(minor, currency)
    assert Money.of(Decimal(text), currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [("1.5", "JPY"), ("0.001", "EUR"), ("1.2345", "KWD"), ("0.0000000001", "EUR")],
)
def test_of_rejects_more_decimals_than_the_currency_has(text: str, currency: str) -> None:
    with pytest.raises(MoneyError):
        Money.of(text, currency)


@pytest.mark.parametrize(
    "text", ["", "1e3", "NaN", "Infinity", "1_000", " 1", "1.", ".5", "1,50", "١٢"]
)
def test_of_rejects_anything_but_plain_decimal_text(text: str) -> None:
    with pytest.raises(MoneyError):
        Money.of(text, "EUR")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("1E+99")])
def test_of_rejects_non_finite_or_absurd_decimals(value: Decimal) -> None:
    with pytest.raises(MoneyError):
        Money.of(value, "EUR")


def test_of_refuses_floats() -> None:
    with pytest.raises(MoneyError):
        Money.of(0.1, "EUR")  # type: ignore[arg-type]


def test_of_accepts_large_exact_exponents() -> None:
    assert Money.of(Decimal("1E+3"), "EUR") == Money(100_000, "EUR")
    assert Money.of(Decimal("0E-50"), "EUR") == Money.zero("EUR")


# --- arithmetic and ordering ----------------------------------------------------------


def test_arithmetic() -> None:
    a, b = Money(150, "EUR"), Money(25, "EUR")
    assert a + b == Money(175, "EUR")
    assert a - b == Money(125, "EUR")
    assert -a == Money(-150, "EUR")
    assert a * 3 == 3 * a == Money(450, "EUR")


@pytest.mark.parametrize("factor", [1.5, Decimal("2"), True, "2"])
def test_multiplication_is_by_int_only(factor: Any) -> None:
    with pytest.raises(TypeError):
        Money(1, "EUR") * factor


def test_ordering() -> None:
    assert Money(1, "EUR") < Money(2, "EUR") <= Money(2, "EUR")
    assert Money(3, "EUR") > Money(2, "EUR") >= Money(2, "EUR")


def test_mixing_currencies_raises() -> None:
    eur, usd = Money(1, "EUR"), Money(1, "USD")
    for operation in (
        lambda: eur + usd,
        lambda: eur - usd,
        lambda: eur < usd,
        lambda: eur <= usd,
        lambda: eur > usd,
        lambda: eur >= usd,
    ):
        with pytest.raises(CurrencyMismatch):
            operation()


def test_different_currencies_are_unequal_not_an_error() -> None:
    assert Money(1, "EUR") != Money(1, "USD")
    assert len({Money(1, "EUR"), Money(1, "USD"), Money(1, "EUR")}) == 2


def test_mixing_with_plain_numbers_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Money(1, "EUR") + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(1, "EUR") < 1  # type: ignore[operator]  # noqa: B015


@given(same_currency_pair())
def test_add_then_subtract_is_identity(pair: tuple[Money, Money]) -> None:
    a, b = pair
    assert a + b - b == a
    assert a - b + b == a
    negated = -a
    assert -negated == a
    assert a + negated == Money.zero(a.currency)


# --- allocation -----------------------------------------------------------------------


def test_allocate_gives_leftover_units_to_the_largest_remainders() -> None:
    cents = [m.amount_minor for m in Money(100, "EUR").allocate([1, 1, 1])]
    assert cents == [34, 33, 33]
    cents = [m.amount_minor for m in Money(10, "EUR").allocate([1, 2])]
    assert cents == [3, 7]
    cents = [m.amount_minor for m in Money(5, "EUR").allocate([3, 7])]
    assert cents == [2, 3]  # equal remainders: the earlier part wins
    cents = [m.amount_minor for m in Money(-100, "EUR").allocate([1, 1, 1])]
    assert cents == [-34, -33, -33]


def test_allocate_with_zero_ratio_gives_nothing_to_that_part() -> None:
    assert Money(7, "JPY").allocate([0, 1]) == [Money(0, "JPY"), Money(7, "JPY")]


@pytest.mark.parametrize("ratios", [[], [0, 0], [1, -1], [True], [1.5]])
def test_allocate_rejects_bad_ratios(ratios: list[Any]) -> None:
    with pytest.raises(MoneyError):
        Money(100, "EUR").allocate(ratios)


@given(
    money(),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20).filter(any),
)
def test_allocate_conserves_the_total(total: Money, ratios: list[int]) -> None:
    parts = total.allocate(ratios)
    assert len(parts) == len(ratios)
    assert sum(p.amount_minor for p in parts) == total.amount_minor
    assert {p.currency for p in parts} == {total.currency}
    exact = [Fraction(total.amount_minor * r, sum(ratios)) for r in ratios]
    assert all(abs(p.amount_minor - e) < 1 for p, e in zip(parts, exact, strict=True))


# --- decimal and text -----------------------------------------------------------------


def test_to_decimal_keeps_the_minor_unit_scale() -> None:
    assert str(Money(150, "EUR").to_decimal()) == "1.50"
    assert str(Money(1235, "JPY").to_decimal()) == "1235"
    assert str(Money(-1, "KWD").to_decimal()) == "-0.001"
    assert str(Money(150, "EUR")) == "1.50 EUR"


@given(money())
def test_decimal_and_text_round_trip(m: Money) -> None:
    assert Money.of(m.to_decimal(), m.currency) == m
    assert Money.of(f"{m.to_decimal():f}", m.currency) == m


def test_format_follows_locale_and_minor_units() -> None:
    assert Money(123450, "EUR").format() == "€1,234.50"
    assert Money(1235, "JPY").format() == "¥1,235"
    assert Money(1235, "JPY").format("ja") == "￥1,235"
    assert Money(1234, "KWD").format() == "KWD1.234"
    assert Money(123450, "EUR").format("it") == "1.234,50\xa0€"
    assert Money(123450, "EUR").format("fr") == "1\u202f234,50\xa0€"


@given(money())
def test_format_shows_exactly_the_currency_minor_units(m: Money) -> None:
    positive = Money(abs(m.amount_minor), m.currency)
    text = positive.format("en")
    digits = "".join(ch for ch in text if ch.isdigit() or ch == ".")
    places = minor_units(m.currency)
    integer, _, fraction = digits.strip(".").partition(".")
    assert len(fraction) == places
    assert Money.of(f"{integer}.{fraction}" if places else integer, m.currency) == positive
